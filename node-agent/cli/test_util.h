#pragma once

// Test-only helpers for agent_cli_test: a thread-safe output buffer (the
// watch command writes from another thread while the test reads) and
// builders of Workload API responses from test CAs.

#include <functional>
#include <streambuf>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "workload.pb.h"

namespace sigil::agent::cli::testing {

// A streambuf that appends to a string under a lock.
class SyncBuf final : public std::streambuf {
 public:
  std::string str() const {
    absl::MutexLock lock(&mu_);
    return data_;
  }
  // Waits until `pred` holds for the contents; false on timeout.
  bool WaitFor(const std::function<bool(const std::string&)>& pred, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pred(data_); };
    return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
  }

 protected:
  int overflow(int c) override {
    if (c != traits_type::eof()) {
      absl::MutexLock lock(&mu_);
      data_ += static_cast<char>(c);
    }
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    absl::MutexLock lock(&mu_);
    data_.append(s, static_cast<size_t>(n));
    return n;
  }

 private:
  mutable absl::Mutex mu_;
  std::string data_ ABSL_GUARDED_BY(mu_);
};

inline size_t CountOf(absl::string_view haystack, absl::string_view needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != absl::string_view::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// One X509SVID entry: `chain` (leaf first) with `key`, and `bundle`.
inline ::X509SVID SvidEntry(const std::string& id, const std::vector<crypto::Certificate>& chain,
                            const crypto::PrivateKey& key,
                            const std::vector<crypto::Certificate>& bundle,
                            const std::string& hint = "") {
  ::X509SVID s;
  s.set_spiffe_id(id);
  s.set_x509_svid(crypto::ConcatDer(chain));
  s.set_x509_svid_key(key.ToPkcs8Der());
  s.set_bundle(crypto::ConcatDer(bundle));
  s.set_hint(hint);
  return s;
}

}  // namespace sigil::agent::cli::testing
