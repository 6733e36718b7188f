#pragma once

// The server's own X509-SVID (spiffe://<td>/spire/server), presented on the
// TCP listener. It is kept in two files under data_dir (key 0600) that the
// gRPC TLS stack watches, and re-minted at half its lifetime.

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "ca/manager.h"
#include "common/clock.h"
#include "spiffe/crypto/certificate.h"

namespace sigil::server {

class ServerSvid {
 public:
  // `dir` holds server_svid.pem and server_svid.key. The pointers must
  // outlive this object.
  ServerSvid(ca::CaManager* ca, std::string dir, absl::Duration ttl, const Clock* clock);

  // Mints and writes a fresh SVID. Errors of minting or writing are returned
  // (the previous files stay in place).
  absl::Status Rotate();
  // Rotates when half the current SVID's lifetime has passed (or none
  // exists yet).
  absl::Status RotateIfDue();

  const std::string& cert_path() const { return cert_path_; }
  const std::string& key_path() const { return key_path_; }
  std::vector<crypto::Certificate> chain() const;

 private:
  ca::CaManager* const ca_;
  const std::string cert_path_;
  const std::string key_path_;
  const absl::Duration ttl_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  std::vector<crypto::Certificate> chain_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sigil::server
