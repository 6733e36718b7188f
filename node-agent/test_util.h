#pragma once

// Test-only helpers for agent_test: a CA hierarchy built at test time and an
// in-memory ServerApi. Nothing here is part of sigil_agent_core. Status
// assertions, temporary directories and WaitFor come from tests/util/.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "node-agent/server_api.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"
#include "spiffe/jwtsvid.h"
#include "spire/api/types/bundle.pb.h"
#include "spire/api/types/entry.pb.h"
#include "tests/util/files.h"
#include "tests/util/status_matchers.h"
#include "tests/util/wait.h"

namespace sigil::agent::testing {

using ::sigil::testing::ModeOf;
using ::sigil::testing::TempDir;
using ::sigil::testing::WaitFor;

// One certification authority: a root, or an intermediate under another.
struct TestCa {
  crypto::Certificate cert;
  crypto::PrivateKey key;
  std::shared_ptr<crypto::CertificateIssuer> issuer;
  // Intermediates between this CA and the root (empty for a root).
  std::vector<crypto::Certificate> chain_to_root;

  static crypto::CertificateTemplate CaTemplate(const std::string& td, absl::Time not_before,
                                                const std::string& cn) {
    crypto::CertificateTemplate t;
    t.serial = crypto::RandomSerial();
    t.subject = {{crypto::NameAttribute::kOrganization, "Sigil agent test"}, {crypto::NameAttribute::kCommonName, cn}};
    t.not_before = not_before;
    t.not_after = not_before + absl::Hours(24 * 365 * 5);
    t.is_ca = true;
    t.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign;
    t.uri_sans = {"spiffe://" + td};
    return t;
  }

  static TestCa Root(const std::string& td, absl::Time not_before, const std::string& cn = "root") {
    crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    crypto::Certificate cert = crypto::SelfSign(CaTemplate(td, not_before, cn), key).value();
    return TestCa{cert, key, crypto::CertificateIssuer::Create(cert, key).value(), {}};
  }

  TestCa Intermediate(const std::string& td, absl::Time not_before, const std::string& cn = "intermediate") const {
    crypto::PrivateKey k = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    crypto::Certificate c = issuer->Issue(CaTemplate(td, not_before, cn), k.public_key().spki_der()).value();
    std::vector<crypto::Certificate> chain{c};
    chain.insert(chain.end(), chain_to_root.begin(), chain_to_root.end());
    return TestCa{c, k, crypto::CertificateIssuer::Create(c, k).value(), chain};
  }

  // A leaf X509-SVID chain (leaf, then intermediates) for `spki_der`.
  std::vector<crypto::Certificate> IssueSvid(const std::string& spiffe_id, const std::string& spki_der,
                                             absl::Time not_before, absl::Time not_after) const {
    crypto::CertificateTemplate t;
    t.serial = crypto::RandomSerial();
    t.subject = {{crypto::NameAttribute::kOrganization, "Sigil agent test"}};
    t.not_before = not_before;
    t.not_after = not_after;
    t.key_usage = crypto::kKeyUsageDigitalSignature | crypto::kKeyUsageKeyEncipherment | crypto::kKeyUsageKeyAgreement;
    t.ext_key_usage = {crypto::ExtKeyUsage::kServerAuth, crypto::ExtKeyUsage::kClientAuth};
    t.uri_sans = {spiffe_id};
    std::vector<crypto::Certificate> chain{issuer->Issue(t, spki_der).value()};
    chain.insert(chain.end(), chain_to_root.begin(), chain_to_root.end());
    return chain;
  }
};

inline spire::api::types::Entry MakeEntry(const std::string& id, const std::string& path,
                                          const std::vector<std::string>& selectors,
                                          const std::string& parent = "/spire/agent/join_token/t",
                                          const std::string& td = "example.org") {
  spire::api::types::Entry e;
  e.set_id(id);
  e.mutable_spiffe_id()->set_trust_domain(td);
  e.mutable_spiffe_id()->set_path(path);
  e.mutable_parent_id()->set_trust_domain(td);
  e.mutable_parent_id()->set_path(parent);
  for (const auto& s : selectors) {
    auto* sel = e.add_selectors();
    auto colon = s.find(':');
    sel->set_type(s.substr(0, colon));
    sel->set_value(s.substr(colon + 1));
  }
  e.set_revision_number(1);
  return e;
}

inline spire::api::types::Bundle BundleProto(const std::string& td, const std::vector<crypto::Certificate>& roots,
                                             const std::vector<bool>& tainted = {}) {
  spire::api::types::Bundle b;
  b.set_trust_domain(td);
  for (size_t i = 0; i < roots.size(); ++i) {
    auto* a = b.add_x509_authorities();
    a->set_asn1(roots[i].der());
    a->set_tainted(i < tainted.size() && tainted[i]);
  }
  return b;
}

// An in-memory server for the SVID rotator and cache: mints X509-SVIDs for
// the SPIFFE ID named in each CSR (or the one set per entry) with `ca`, and
// JWT-SVIDs with its own key. Thread-safe.
class FakeServerApi final : public ServerApi {
 public:
  FakeServerApi(const Clock* clock, TestCa ca) : clock_(clock), ca_(std::move(ca)) {}

  void SetCa(TestCa ca) {
    absl::MutexLock lock(&mu_);
    ca_ = std::move(ca);
  }
  void SetUnavailable(bool unavailable) {
    absl::MutexLock lock(&mu_);
    unavailable_ = unavailable;
  }
  void SetX509Ttl(absl::Duration ttl) {
    absl::MutexLock lock(&mu_);
    x509_ttl_ = ttl;
  }
  void SetJwtTtl(absl::Duration ttl) {
    absl::MutexLock lock(&mu_);
    jwt_ttl_ = ttl;
  }
  // Entries minted with an error instead.
  void RefuseEntry(const std::string& entry_id, absl::Status status) {
    absl::MutexLock lock(&mu_);
    refused_[entry_id] = std::move(status);
  }
  int batch_calls() const {
    absl::MutexLock lock(&mu_);
    return batch_calls_;
  }
  int x509_minted() const {
    absl::MutexLock lock(&mu_);
    return x509_minted_;
  }
  int jwt_minted() const {
    absl::MutexLock lock(&mu_);
    return jwt_minted_;
  }
  size_t largest_batch() const {
    absl::MutexLock lock(&mu_);
    return largest_batch_;
  }
  // The entry IDs of every X509 request, in order.
  std::vector<std::string> requested() const {
    absl::MutexLock lock(&mu_);
    return requested_;
  }

  absl::StatusOr<std::vector<X509SvidResult>> BatchNewX509Svid(const std::vector<X509SvidRequest>& requests) override {
    absl::MutexLock lock(&mu_);
    batch_calls_++;
    if (unavailable_) return absl::UnavailableError("fake server is down");
    largest_batch_ = std::max(largest_batch_, requests.size());
    std::vector<X509SvidResult> out;
    const absl::Time now = clock_->Now();
    for (const auto& r : requests) {
      requested_.push_back(r.entry_id);
      auto refused = refused_.find(r.entry_id);
      if (refused != refused_.end()) {
        out.push_back(refused->second);
        continue;
      }
      auto csr = crypto::CertificateRequest::FromDer(r.csr_der);
      if (!csr.ok() || csr->uri_sans().size() != 1) {
        out.push_back(absl::InvalidArgumentError("bad CSR"));
        continue;
      }
      out.push_back(ca_.IssueSvid(csr->uri_sans()[0], csr->spki_der(), now, now + x509_ttl_));
      x509_minted_++;
    }
    return out;
  }

  absl::StatusOr<MintedJwtSvid> NewJwtSvid(const std::string& entry_id,
                                           const std::vector<std::string>& audience) override {
    absl::MutexLock lock(&mu_);
    if (unavailable_) return absl::UnavailableError("fake server is down");
    auto it = jwt_ids_.find(entry_id);
    if (it == jwt_ids_.end()) return absl::NotFoundError("entry not authorized");
    const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_->Now()));
    spiffe::JwtSvidClaims claims{it->second, audience, now + jwt_ttl_, now, ""};
    auto token = spiffe::SignJwtSvid(claims, jwt_key_, "kid1");
    if (!token.ok()) return token.status();
    jwt_minted_++;
    return MintedJwtSvid{it->second, *token, now, now + jwt_ttl_};
  }
  void SetJwtIdentity(const std::string& entry_id, const std::string& spiffe_id) {
    absl::MutexLock lock(&mu_);
    jwt_ids_.insert_or_assign(entry_id, spiffe::SpiffeId::FromString(spiffe_id).value());
  }

 private:
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  TestCa ca_ ABSL_GUARDED_BY(mu_);
  crypto::PrivateKey jwt_key_ = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration x509_ttl_ ABSL_GUARDED_BY(mu_) = absl::Hours(1);
  absl::Duration jwt_ttl_ ABSL_GUARDED_BY(mu_) = absl::Minutes(5);
  std::map<std::string, absl::Status> refused_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, spiffe::SpiffeId> jwt_ids_ ABSL_GUARDED_BY(mu_);
  int batch_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int x509_minted_ ABSL_GUARDED_BY(mu_) = 0;
  int jwt_minted_ ABSL_GUARDED_BY(mu_) = 0;
  size_t largest_batch_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> requested_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sigil::agent::testing
