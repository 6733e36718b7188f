#pragma once

// Helpers shared by the x509pop_test sources: fixtures, a test PKI built
// with spiffe/crypto and in-memory challengers. Status assertions and
// temporary directories come from tests/util/.

#include <gtest/gtest.h>

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
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"
#include "tests/util/files.h"
#include "tests/util/status_matchers.h"

namespace sigil::attestors::node::x509pop::testing {

using ::sigil::testing::TempDir;

// The instant the tests treat as now: 2030-01-01T00:00:00Z, inside the
// validity of the checked-in fixtures.
inline absl::Time TestNow() { return absl::FromUnixSeconds(1893456000); }

inline std::string FixturePath(const std::string& name) { return ::sigil::testing::TestDataPath("x509pop/" + name); }

// Reads tests/testdata/x509pop/<name>.
inline std::string Fixture(const std::string& name) { return ::sigil::testing::ReadTestData("x509pop/" + name); }

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
