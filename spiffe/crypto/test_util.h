#pragma once

// Helpers shared by the crypto_test sources (not part of sigil_crypto).

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"

#define SIGIL_TEST_CONCAT_INNER(a, b) a##b
#define SIGIL_TEST_CONCAT(a, b) SIGIL_TEST_CONCAT_INNER(a, b)

// ASSERT that a StatusOr is OK, then move its value into `lhs`.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL(SIGIL_TEST_CONCAT(statusor_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL(statusor, lhs, rexpr)          \
  auto statusor = (rexpr);                                       \
  ASSERT_TRUE(statusor.ok()) << statusor.status().ToString();    \
  lhs = std::move(statusor).value()

#define EXPECT_OK(expr)                        \
  do {                                         \
    ::absl::Status s_ = (expr);                \
    EXPECT_TRUE(s_.ok()) << s_.ToString();     \
  } while (false)

// EXPECT that a Status (or StatusOr) failed with `code` and a message
// containing `substr`.
#define EXPECT_STATUS(expr, code, substr) \
  ::sigil::crypto::testing::ExpectStatus(::sigil::crypto::testing::StatusOf(expr), code, substr)

namespace sigil::crypto::testing {

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

// The instant the tests treat as now: 2030-01-01T00:00:00Z, inside the
// validity of the checked-in OpenSSL fixtures.
inline absl::Time TestNow() { return absl::FromUnixSeconds(1893456000); }

inline std::string SourceDir() {
  const char* dir = std::getenv("SIGIL_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

// Reads tests/testdata/crypto/<name>.
inline std::string Fixture(const std::string& name) {
  std::string path = SourceDir() + "/tests/testdata/crypto/" + name;
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) {
    ADD_FAILURE() << "fixture " << path << ": " << data.status();
    return "";
  }
  return *data;
}

inline CertificateTemplate RootTemplate(absl::Time now = TestNow()) {
  CertificateTemplate t;
  t.serial = RandomSerial();
  t.subject = {{NameAttribute::kCountry, "US"}, {NameAttribute::kOrganization, "SPIFFE"}};
  t.not_before = now - absl::Hours(1);
  t.not_after = now + absl::Hours(24 * 365);
  t.is_ca = true;
  t.key_usage = kKeyUsageKeyCertSign | kKeyUsageCrlSign;
  t.uri_sans = {"spiffe://example.org"};
  return t;
}

// The X509-SVID leaf shape SPIRE issues.
inline CertificateTemplate LeafTemplate(absl::Time now = TestNow(),
                                        const std::string& uri = "spiffe://example.org/workload") {
  CertificateTemplate t;
  t.serial = RandomSerial();
  t.subject = {{NameAttribute::kCountry, "US"}, {NameAttribute::kOrganization, "SPIRE"}};
  t.not_before = now - absl::Seconds(10);
  t.not_after = now + absl::Hours(1);
  t.key_usage = kKeyUsageDigitalSignature | kKeyUsageKeyEncipherment | kKeyUsageKeyAgreement;
  t.ext_key_usage = {ExtKeyUsage::kServerAuth, ExtKeyUsage::kClientAuth};
  t.uri_sans = {uri};
  return t;
}

// Runs `command` through /bin/sh, returning its stdout+stderr and exit code.
inline std::string Run(const std::string& command, int* exit_code) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    *exit_code = -1;
    return out;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// A private temporary directory, removed with its files on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "sigil_crypto_XXXXXX";
    char* made = mkdtemp(tmpl.data());
    if (made == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    int code;
    Run("rm -rf '" + path_ + "'", &code);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, absl::string_view data) const {
    std::string file = path_ + "/" + name;
    absl::Status s = WriteFileAtomic(file, data, 0600);
    if (!s.ok()) ADD_FAILURE() << s;
    return file;
  }

 private:
  std::string path_;
};

// Parses DER with OpenSSL's own X.509 parser (independent of Certificate).
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
inline std::unique_ptr<X509, X509Free> OpenSslParse(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  EXPECT_NE(x, nullptr) << "OpenSSL refused the certificate";
  if (x != nullptr) {
    EXPECT_EQ(p, reinterpret_cast<const unsigned char*>(der.data()) + der.size());
  }
  return std::unique_ptr<X509, X509Free>(x);
}

}  // namespace sigil::crypto::testing
