#pragma once

// Helpers shared by the x509pop_test sources: status assertions, fixtures,
// temporary files, a test PKI built with spiffe/crypto and in-memory
// challengers.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "attestors/node/agent_attestor.h"
#include "attestors/node/server_attestor.h"
#include "common/file_util.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"

#define X509POP_TEST_CONCAT_INNER(a, b) a##b
#define X509POP_TEST_CONCAT(a, b) X509POP_TEST_CONCAT_INNER(a, b)

// ASSERT that a StatusOr is OK, then move its value into `lhs`.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) ASSERT_OK_AND_ASSIGN_IMPL(X509POP_TEST_CONCAT(statusor_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL(statusor, lhs, rexpr)       \
  auto statusor = (rexpr);                                    \
  ASSERT_TRUE(statusor.ok()) << statusor.status().ToString(); \
  lhs = std::move(statusor).value()

#define EXPECT_OK(expr)                    \
  do {                                     \
    ::absl::Status s_ = (expr);            \
    EXPECT_TRUE(s_.ok()) << s_.ToString(); \
  } while (false)

#define ASSERT_OK(expr)                    \
  do {                                     \
    ::absl::Status s_ = (expr);            \
    ASSERT_TRUE(s_.ok()) << s_.ToString(); \
  } while (false)

// EXPECT that a Status (or StatusOr) failed with `code` and a message
// containing `substr`.
#define EXPECT_STATUS(expr, code, substr)                                                                              \
  ::sigil::attestors::node::x509pop::testing::ExpectStatus(::sigil::attestors::node::x509pop::testing::StatusOf(expr), \
                                                           code, substr)

namespace sigil::attestors::node::x509pop::testing {

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
// validity of the checked-in fixtures.
inline absl::Time TestNow() { return absl::FromUnixSeconds(1893456000); }

inline std::string SourceDir() {
  const char* dir = std::getenv("SIGIL_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

inline std::string FixturePath(const std::string& name) { return SourceDir() + "/tests/testdata/x509pop/" + name; }

// Reads tests/testdata/x509pop/<name>.
inline std::string Fixture(const std::string& name) {
  absl::StatusOr<std::string> data = ReadFile(FixturePath(name));
  if (!data.ok()) {
    ADD_FAILURE() << "fixture " << name << ": " << data.status();
    return "";
  }
  return *data;
}

inline crypto::Certificate FixtureCert(const std::string& name) {
  absl::StatusOr<std::vector<crypto::Certificate>> certs = crypto::Certificate::ParsePemChain(Fixture(name));
  if (!certs.ok()) {
    ADD_FAILURE() << name << ": " << certs.status();
    abort();
  }
  return certs->front();
}

inline crypto::PrivateKey FixtureKey(const std::string& name) {
  absl::StatusOr<crypto::PrivateKey> key = crypto::PrivateKey::FromPem(Fixture(name));
  if (!key.ok()) {
    ADD_FAILURE() << name << ": " << key.status();
    abort();
  }
  return *key;
}

// A private temporary directory, removed with its files on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "sigil_x509pop_XXXXXX";
    char* made = mkdtemp(tmpl.data());
    if (made == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "could not remove " << path_;
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

// A key and the certificate issued for it.
struct Issued {
  crypto::PrivateKey key;
  crypto::Certificate cert;
};

inline crypto::PrivateKey NewKey(crypto::KeyType type) {
  absl::StatusOr<crypto::PrivateKey> key = crypto::PrivateKey::Generate(type);
  if (!key.ok()) {
    ADD_FAILURE() << key.status();
    abort();
  }
  return *key;
}

inline crypto::CertificateTemplate CaTemplate(const std::string& cn, absl::Time now = TestNow()) {
  crypto::CertificateTemplate t;
  t.serial = crypto::RandomSerial();
  t.subject = {{crypto::NameAttribute::kOrganization, "Sigil Test"}, {crypto::NameAttribute::kCommonName, cn}};
  t.not_before = now - absl::Hours(24);
  t.not_after = now + absl::Hours(24 * 365);
  t.is_ca = true;
  t.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign;
  return t;
}

// A node certificate as an operator's PKI would issue it: CN, digital
// signature key usage, valid for a week around TestNow().
inline crypto::CertificateTemplate NodeTemplate(const std::string& cn, absl::Time now = TestNow()) {
  crypto::CertificateTemplate t;
  t.serial = crypto::RandomSerial();
  t.subject = {{crypto::NameAttribute::kOrganization, "Sigil Test"}, {crypto::NameAttribute::kCommonName, cn}};
  t.not_before = now - absl::Hours(1);
  t.not_after = now + absl::Hours(24 * 7);
  t.key_usage = crypto::kKeyUsageDigitalSignature;
  return t;
}

inline Issued SelfSigned(const crypto::CertificateTemplate& tmpl, crypto::KeyType type = crypto::KeyType::kEcP256) {
  crypto::PrivateKey key = NewKey(type);
  absl::StatusOr<crypto::Certificate> cert = crypto::SelfSign(tmpl, key);
  if (!cert.ok()) {
    ADD_FAILURE() << cert.status();
    abort();
  }
  return {key, *cert};
}

inline Issued IssueFrom(const Issued& issuer, const crypto::CertificateTemplate& tmpl,
                        crypto::KeyType type = crypto::KeyType::kEcP256) {
  crypto::PrivateKey key = NewKey(type);
  absl::StatusOr<std::unique_ptr<crypto::CertificateIssuer>> ca =
      crypto::CertificateIssuer::Create(issuer.cert, issuer.key);
  if (!ca.ok()) {
    ADD_FAILURE() << ca.status();
    abort();
  }
  absl::StatusOr<crypto::Certificate> cert = (*ca)->Issue(tmpl, key.public_key().spki_der());
  if (!cert.ok()) {
    ADD_FAILURE() << cert.status();
    abort();
  }
  return {key, *cert};
}

// Relays challenges to `answer` and records them.
class FakeChallenger final : public Challenger {
 public:
  explicit FakeChallenger(std::function<absl::StatusOr<std::string>(const std::string&)> answer)
      : answer_(std::move(answer)) {}

  absl::StatusOr<std::string> Challenge(const std::string& challenge) override {
    challenges_.push_back(challenge);
    return answer_(challenge);
  }

  const std::vector<std::string>& challenges() const { return challenges_; }

 private:
  std::function<absl::StatusOr<std::string>(const std::string&)> answer_;
  std::vector<std::string> challenges_;
};

// The in-memory AttestAgent stream: the server's challenges go to `agent`.
class AgentChallenger final : public Challenger {
 public:
  explicit AgentChallenger(AgentAttestor* agent) : agent_(agent) {}

  absl::StatusOr<std::string> Challenge(const std::string& challenge) override {
    challenges_.push_back(challenge);
    return agent_->Answer(challenge);
  }

  const std::vector<std::string>& challenges() const { return challenges_; }

 private:
  AgentAttestor* const agent_;
  std::vector<std::string> challenges_;
};

}  // namespace sigil::attestors::node::x509pop::testing
