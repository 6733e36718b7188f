#pragma once

// Helpers shared by the ca_test sources (not part of sigil_ca): status
// assertions, temporary directories, an upstream PKI made at test time, and
// running the openssl CLI.

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"

#define CA_TEST_CONCAT_INNER(a, b) a##b
#define CA_TEST_CONCAT(a, b) CA_TEST_CONCAT_INNER(a, b)

// ASSERT that a StatusOr is OK, then move its value into `lhs`.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL(CA_TEST_CONCAT(statusor_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL(statusor, lhs, rexpr)       \
  auto statusor = (rexpr);                                    \
  ASSERT_TRUE(statusor.ok()) << statusor.status().ToString(); \
  lhs = std::move(statusor).value()

#define ASSERT_OK(expr)                          \
  do {                                           \
    ::absl::Status s_ = ::sigil::ca::testing::StatusOf(expr); \
    ASSERT_TRUE(s_.ok()) << s_.ToString();       \
  } while (false)

#define EXPECT_OK(expr)                          \
  do {                                           \
    ::absl::Status s_ = ::sigil::ca::testing::StatusOf(expr); \
    EXPECT_TRUE(s_.ok()) << s_.ToString();       \
  } while (false)

// EXPECT that a Status (or StatusOr) failed with `code` and a message
// containing `substr`.
#define EXPECT_STATUS(expr, code, substr) \
  ::sigil::ca::testing::ExpectStatus(::sigil::ca::testing::StatusOf(expr), code, substr)

namespace sigil::ca::testing {

inline absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

inline void ExpectStatus(const absl::Status& s, absl::StatusCode code, absl::string_view substr) {
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(substr), absl::string_view::npos)
      << "message \"" << s.message() << "\" lacks \"" << substr << "\"";
}

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/sigil-ca-test-XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

 private:
  std::string path_;
};

inline void WriteTestFile(const std::string& path, absl::string_view data, mode_t mode = 0644) {
  absl::Status s = WriteFileAtomic(path, data, mode);
  ASSERT_TRUE(s.ok()) << s;
}

// Keys are expensive, so each index is generated once per test binary.
inline const crypto::PrivateKey& TestKey(int index = 0) {
  static auto* cache = new std::map<int, crypto::PrivateKey>();
  auto it = cache->find(index);
  if (it == cache->end()) {
    it = cache->emplace(index, crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value())
             .first;
  }
  return it->second;
}

inline crypto::CertificateTemplate CaTemplate(const std::string& cn, absl::Time not_before,
                                              absl::Time not_after) {
  crypto::CertificateTemplate t;
  t.serial = crypto::RandomSerial();
  t.subject = {{crypto::NameAttribute::kOrganization, "Upstream test PKI"},
               {crypto::NameAttribute::kCommonName, cn}};
  t.not_before = not_before;
  t.not_after = not_after;
  t.is_ca = true;
  t.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign;
  return t;
}

// An upstream PKI: a root and an intermediate signed by it.
struct UpstreamPki {
  crypto::PrivateKey root_key;
  crypto::Certificate root;
  crypto::PrivateKey intermediate_key;
  crypto::Certificate intermediate;
};

inline UpstreamPki MakeUpstreamPki(absl::Time now, absl::Duration root_ttl,
                                   absl::Duration intermediate_ttl) {
  const crypto::PrivateKey& root_key = TestKey(100);
  const crypto::PrivateKey& intermediate_key = TestKey(101);
  crypto::Certificate root =
      crypto::SelfSign(CaTemplate("upstream root", now - absl::Hours(1), now + root_ttl), root_key)
          .value();
  auto issuer = crypto::CertificateIssuer::Create(root, root_key).value();
  crypto::Certificate intermediate =
      issuer
          ->Issue(CaTemplate("upstream intermediate", now - absl::Hours(1), now + intermediate_ttl),
                  intermediate_key.public_key().spki_der())
          .value();
  return UpstreamPki{root_key, root, intermediate_key, intermediate};
}

// Runs a shell command; returns its exit status and combined output.
inline std::pair<int, std::string> RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace sigil::ca::testing
