#include "ca/manager.h"

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "ca/ca_test_util.h"
#include "common/clock.h"
#include "nlohmann/json.hpp"
#include "spiffe/crypto/encoding.h"
#include "spiffe/jwtsvid.h"
#include "spiffe/x509svid.h"

namespace sigil::ca {
namespace {

using testing::MakeUpstreamPki;
using testing::RunShell;
using testing::TempDir;
using testing::TestKey;
using testing::UpstreamPki;
using testing::WriteTestFile;

// ---- Fakes ----

class FakeJournalStore final : public JournalStore {
 public:
  absl::StatusOr<std::optional<std::string>> LoadJournal() override {
    if (!fail_load.ok()) return fail_load;
    return saved;
  }
  absl::Status SaveJournal(const std::string& journal) override {
    if (!fail_save.ok()) return fail_save;
    saved = journal;
    ++saves;
    return absl::OkStatus();
  }
  Journal Parsed() const {
    Journal j;
    EXPECT_TRUE(saved.has_value() && j.ParseFromString(*saved));
    return j;
  }

  std::optional<std::string> saved;
  int saves = 0;
  absl::Status fail_load;
  absl::Status fail_save;
};

class FakeBundlePublisher final : public BundlePublisher {
 public:
  absl::Status PublishLocalAuthorities(const std::vector<PublishedX509Authority>& x509,
                                       const std::vector<PublishedJwtAuthority>& jwt) override {
    if (!fail_publish.ok()) return fail_publish;
    for (const auto& a : x509) x509_[a.cert.der()] = a.tainted;
    for (const auto& a : jwt) {
      jwt_.insert_or_assign(a.authority.key_id, std::make_pair(a.authority.public_key, a.tainted));
    }
    return absl::OkStatus();
  }
  absl::Status RemoveX509Authority(const crypto::Certificate& cert) override {
    if (!fail_remove.ok()) return fail_remove;
    x509_.erase(cert.der());
    return absl::OkStatus();
  }
  absl::Status RemoveJwtAuthority(const std::string& key_id) override {
    if (!fail_remove.ok()) return fail_remove;
    jwt_.erase(key_id);
    return absl::OkStatus();
  }

  bool HasX509(const crypto::Certificate& cert) const { return x509_.count(cert.der()) != 0; }
  bool X509Tainted(const crypto::Certificate& cert) const { return x509_.at(cert.der()); }
  bool HasJwt(const std::string& kid) const { return jwt_.count(kid) != 0; }
  bool JwtTainted(const std::string& kid) const { return jwt_.at(kid).second; }
  size_t x509_count() const { return x509_.size(); }
  size_t jwt_count() const { return jwt_.size(); }

  absl::Status fail_publish;
  absl::Status fail_remove;

 private:
  std::map<std::string, bool> x509_;
  std::map<std::string, std::pair<crypto::PublicKey, bool>> jwt_;
};

// A key manager that records which keys are alive, over a real one.
class RecordingKeyManager final : public KeyManager {
 public:
  explicit RecordingKeyManager(KeyManager* inner) : inner_(inner) {}
  absl::StatusOr<crypto::PrivateKey> GenerateKey(const std::string& key_id,
                                                 crypto::KeyType type) override {
    if (!fail_generate.ok()) return fail_generate;
    auto key = inner_->GenerateKey(key_id, type);
    if (key.ok()) live.insert(key_id);
    return key;
  }
  absl::StatusOr<crypto::PrivateKey> GetKey(const std::string& key_id) const override {
    return inner_->GetKey(key_id);
  }
  absl::Status DeleteKey(const std::string& key_id) override {
    absl::Status s = inner_->DeleteKey(key_id);
    if (s.ok()) live.erase(key_id);
    return s;
  }
  const char* name() const override { return inner_->name(); }

  std::set<std::string> live;
  absl::Status fail_generate;

 private:
  KeyManager* inner_;
};

// ---- Helpers ----

const absl::Time kStart = absl::FromUnixSeconds(1767225600);  // 2026-01-01

spiffe::TrustDomain Td() { return spiffe::TrustDomain::FromString("example.org").value(); }
spiffe::SpiffeId Id(absl::string_view s) { return spiffe::SpiffeId::FromString(s).value(); }

CaOptions Options() {
  return CaOptions{Td()};
}

spiffe::BundleSet BundleSetOf(const spiffe::Bundle& bundle) {
  spiffe::BundleSet set;
  set.Add(bundle);
  return set;
}

crypto::Certificate CertOf(const std::string& der) { return crypto::Certificate::FromDer(der).value(); }

const X509AuthorityRecord* FindX509(const Journal& j, const std::string& authority_id) {
  for (const auto& r : j.x509()) {
    if (r.authority_id() == authority_id) return &r;
  }
  return nullptr;
}
const JwtAuthorityRecord* FindJwt(const Journal& j, const std::string& authority_id) {
  for (const auto& r : j.jwt()) {
    if (r.authority_id() == authority_id) return &r;
  }
  return nullptr;
}

std::set<std::string> BundleX509Ids(const spiffe::Bundle& bundle) {
  std::set<std::string> ids;
  for (const auto& cert : bundle.x509_authorities()) {
    ids.insert(crypto::HexEncode(cert.subject_key_id()));
  }
  return ids;
}
std::set<std::string> BundleJwtIds(const spiffe::Bundle& bundle) {
  std::set<std::string> ids;
  for (const auto& a : bundle.jwt_authorities()) ids.insert(a.key_id);
  return ids;
}

class CaManagerTest : public ::testing::Test {
 protected:
  CaManagerTest() : clock_(kStart), keys_(&memory_keys_) {}

  std::unique_ptr<CaManager> MustCreate(CaOptions options = Options(),
                                        UpstreamAuthority* upstream = nullptr) {
    auto manager = CaManager::Create(std::move(options), &keys_, upstream, &journal_, &publisher_,
                                     &clock_);
    EXPECT_TRUE(manager.ok()) << manager.status();
    return manager.ok() ? *std::move(manager) : nullptr;
  }

  absl::StatusOr<std::vector<crypto::Certificate>> Mint(const CaManager& ca,
                                                        absl::Duration ttl = absl::ZeroDuration(),
                                                        std::vector<std::string> dns = {}) {
    X509SvidParams params{TestKey().public_key().spki_der(), Id("spiffe://example.org/workload")};
    params.ttl = ttl;
    params.dns_sans = std::move(dns);
    return ca.MintX509Svid(params);
  }

  std::string ActiveX509Id(const CaManager& ca) {
    auto states = ca.GetX509AuthorityStates();
    return states.active.has_value() ? states.active->authority_id : "";
  }

  FakeClock clock_;
  MemoryKeyManager memory_keys_;
  RecordingKeyManager keys_;
  FakeJournalStore journal_;
  FakeBundlePublisher publisher_;
};

// ---- Creation ----

TEST_F(CaManagerTest, FirstStartCreatesActiveAuthoritiesAndPublishesThem) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  AuthorityStates x509 = ca->GetX509AuthorityStates();
  AuthorityStates jwt = ca->GetJwtAuthorityStates();
  ASSERT_TRUE(x509.active.has_value());
  ASSERT_TRUE(jwt.active.has_value());
  EXPECT_FALSE(x509.prepared.has_value());
  EXPECT_FALSE(x509.old.has_value());
  EXPECT_FALSE(jwt.prepared.has_value());
  EXPECT_EQ(x509.active->expires_at, kStart + absl::Hours(24));
  EXPECT_EQ(jwt.active->expires_at, kStart + absl::Hours(24));
  EXPECT_TRUE(x509.active->upstream_authority_id.empty());
  EXPECT_EQ(jwt.active->authority_id.size(), 32u);

  Journal j = journal_.Parsed();
  ASSERT_EQ(j.x509_size(), 1);
  ASSERT_EQ(j.jwt_size(), 1);
  EXPECT_EQ(j.x509(0).status(), ACTIVE);
  EXPECT_EQ(j.jwt(0).status(), ACTIVE);
  EXPECT_EQ(keys_.live, (std::set<std::string>{j.x509(0).key_id(), j.jwt(0).key_id()}));

  crypto::Certificate root = CertOf(j.x509(0).chain_der(0));
  EXPECT_TRUE(publisher_.HasX509(root));
  EXPECT_FALSE(publisher_.X509Tainted(root));
  EXPECT_TRUE(publisher_.HasJwt(jwt.active->authority_id));
  EXPECT_EQ(publisher_.x509_count(), 1u);
  EXPECT_EQ(publisher_.jwt_count(), 1u);

  spiffe::Bundle bundle = ca->LocalBundle();
  EXPECT_EQ(bundle.x509_authorities(), std::vector<crypto::Certificate>{root});
  EXPECT_EQ(BundleJwtIds(bundle), std::set<std::string>{jwt.active->authority_id});
}

TEST_F(CaManagerTest, SelfSignedCaCertificateFields) {
  CaOptions options = Options();
  options.ca_subject = {{crypto::NameAttribute::kCountry, "DE"},
                        {crypto::NameAttribute::kOrganization, "Acme"},
                        {crypto::NameAttribute::kCommonName, "Acme CA"}};
  options.ca_ttl = absl::Hours(48);
  auto ca = MustCreate(options);
  ASSERT_NE(ca, nullptr);
  crypto::Certificate root = ca->LocalBundle().x509_authorities().at(0);
  EXPECT_TRUE(root.is_ca());
  EXPECT_TRUE(root.has_key_usage());
  EXPECT_EQ(root.key_usage(), crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign |
                                  crypto::kKeyUsageDigitalSignature);
  EXPECT_EQ(root.uri_sans(), std::vector<std::string>{"spiffe://example.org"});
  EXPECT_EQ(root.subject(), "CN=Acme CA,O=Acme,C=DE");
  EXPECT_EQ(root.issuer(), root.subject());
  EXPECT_EQ(root.not_before(), kStart - absl::Seconds(10));
  EXPECT_EQ(root.not_after(), kStart + absl::Hours(48));
  EXPECT_EQ(crypto::HexEncode(root.subject_key_id()), ActiveX509Id(*ca));
  EXPECT_GT(root.serial_hex().size(), 16u);
  EXPECT_LE(root.serial_hex().size(), 32u);
}

TEST_F(CaManagerTest, BadOptionsAreInvalidArgumentNamingTheOption) {
  CaOptions options = Options();
  options.ca_ttl = absl::ZeroDuration();
  EXPECT_STATUS(CaManager::Create(options, &keys_, nullptr, &journal_, &publisher_, &clock_),
                absl::StatusCode::kInvalidArgument, "ca_ttl");
  options = Options();
  options.default_x509_svid_ttl = -absl::Seconds(1);
  EXPECT_STATUS(CaManager::Create(options, &keys_, nullptr, &journal_, &publisher_, &clock_),
                absl::StatusCode::kInvalidArgument, "default_x509_svid_ttl");
  options = Options();
  options.default_jwt_svid_ttl = absl::ZeroDuration();
  EXPECT_STATUS(CaManager::Create(options, &keys_, nullptr, &journal_, &publisher_, &clock_),
                absl::StatusCode::kInvalidArgument, "default_jwt_svid_ttl");
  options = Options();
  options.ca_subject.clear();
  EXPECT_STATUS(CaManager::Create(options, &keys_, nullptr, &journal_, &publisher_, &clock_),
                absl::StatusCode::kInvalidArgument, "ca_subject");
  EXPECT_EQ(journal_.saves, 0);
}

TEST_F(CaManagerTest, StoreErrorsOnCreateArePassedOnAndLeaveNoKeys) {
  publisher_.fail_publish = absl::UnavailableError("bundle store down");
  EXPECT_STATUS(CaManager::Create(Options(), &keys_, nullptr, &journal_, &publisher_, &clock_),
                absl::StatusCode::kUnavailable, "bundle store down");
  EXPECT_TRUE(keys_.live.empty());
  EXPECT_FALSE(journal_.saved.has_value());

  publisher_.fail_publish = absl::OkStatus();
  journal_.fail_save = absl::UnavailableError("datastore down");
  EXPECT_STATUS(CaManager::Create(Options(), &keys_, nullptr, &journal_, &publisher_, &clock_),
                absl::StatusCode::kUnavailable, "datastore down");
  EXPECT_TRUE(keys_.live.empty());

  journal_.fail_save = absl::OkStatus();
  journal_.fail_load = absl::UnavailableError("cannot load");
  EXPECT_STATUS(CaManager::Create(Options(), &keys_, nullptr, &journal_, &publisher_, &clock_),
                absl::StatusCode::kUnavailable, "cannot load");
}

TEST_F(CaManagerTest, CorruptJournalIsDataLoss) {
  journal_.saved = "\xff\xff\xff not a protobuf";
  EXPECT_STATUS(CaManager::Create(Options(), &keys_, nullptr, &journal_, &publisher_, &clock_),
                absl::StatusCode::kDataLoss, "cannot parse");

  Journal j;
  X509AuthorityRecord* r = j.add_x509();
  r->set_authority_id("ab");
  r->set_key_id("k");
  r->set_status(ACTIVE);
  r->add_chain_der("not a certificate");
  r->add_roots_der("not a certificate");
  journal_.saved = j.SerializeAsString();
  EXPECT_STATUS(CaManager::Create(Options(), &keys_, nullptr, &journal_, &publisher_, &clock_),
                absl::StatusCode::kDataLoss, "x509[0]: malformed certificate");
}

// ---- Rotation ----

// Drives the clock over four CA lifetimes and checks every transition at the
// exact second the schedule gives: with ca_ttl 24h an authority created at T
// gets a successor prepared at T+12h, activated at T+20h, and expires at T+24h.
TEST_F(CaManagerTest, RotationFollowsScheduleOverSeveralLifetimes) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);

  struct Minted {
    std::vector<crypto::Certificate> chain;
    std::string signer;  // authority ID
  };
  std::vector<Minted> minted;
  std::string active = ActiveX509Id(*ca);
  std::string active_jwt = ca->GetJwtAuthorityStates().active->authority_id;
  std::set<std::string> seen_ids = {active};

  for (int generation = 0; generation < 8; ++generation) {
    const absl::Time issued = kStart + absl::Hours(12) * generation;
    // Just before the preparation threshold: nothing happens.
    clock_.Set(issued + absl::Hours(12) - absl::Seconds(1));
    ASSERT_OK(ca->Rotate());
    EXPECT_FALSE(ca->GetX509AuthorityStates().prepared.has_value()) << generation;
    EXPECT_FALSE(ca->GetJwtAuthorityStates().prepared.has_value()) << generation;

    // At the threshold: a successor is prepared and published, and the
    // authority that was old until now expires and leaves the bundle.
    clock_.Set(issued + absl::Hours(12));
    const int saves_before = journal_.saves;
    ASSERT_OK(ca->Rotate());
    EXPECT_EQ(journal_.saves, saves_before + 1);
    AuthorityStates x509 = ca->GetX509AuthorityStates();
    AuthorityStates jwt = ca->GetJwtAuthorityStates();
    ASSERT_TRUE(x509.prepared.has_value()) << generation;
    ASSERT_TRUE(jwt.prepared.has_value()) << generation;
    EXPECT_EQ(x509.active->authority_id, active);
    EXPECT_EQ(x509.prepared->expires_at, clock_.Now() + absl::Hours(24));
    EXPECT_EQ(jwt.prepared->expires_at, clock_.Now() + absl::Hours(24));
    EXPECT_TRUE(seen_ids.insert(x509.prepared->authority_id).second);
    const std::string prepared = x509.prepared->authority_id;
    const std::string prepared_jwt = jwt.prepared->authority_id;
    EXPECT_FALSE(x509.old.has_value()) << "the old authority expired at this very second";
    EXPECT_EQ(BundleX509Ids(ca->LocalBundle()), (std::set<std::string>{active, prepared}));
    EXPECT_EQ(BundleJwtIds(ca->LocalBundle()), (std::set<std::string>{active_jwt, prepared_jwt}));
    EXPECT_EQ(publisher_.x509_count(), 2u);
    EXPECT_EQ(publisher_.jwt_count(), 2u);
    Journal j = journal_.Parsed();
    EXPECT_EQ(j.x509_size(), 2);
    EXPECT_TRUE(publisher_.HasX509(CertOf(FindX509(j, prepared)->chain_der(0))));
    EXPECT_TRUE(publisher_.HasJwt(prepared_jwt));

    // Minted while prepared: still signed by the active authority.
    ASSERT_OK_AND_ASSIGN(auto before, Mint(*ca, absl::Hours(10)));
    EXPECT_EQ(crypto::HexEncode(before[0].authority_key_id()), active);
    minted.push_back({before, active});

    // Just before the activation threshold: still the same active authority.
    clock_.Set(issued + absl::Hours(20) - absl::Seconds(1));
    ASSERT_OK(ca->Rotate());
    EXPECT_EQ(ActiveX509Id(*ca), active);
    EXPECT_EQ(ca->GetJwtAuthorityStates().active->authority_id, active_jwt);

    // At the activation threshold the prepared authority signs, the previous
    // one is old (still published) and its key is gone from the key manager.
    clock_.Set(issued + absl::Hours(20));
    ASSERT_OK(ca->Rotate());
    x509 = ca->GetX509AuthorityStates();
    jwt = ca->GetJwtAuthorityStates();
    EXPECT_EQ(x509.active->authority_id, prepared);
    ASSERT_TRUE(x509.old.has_value());
    EXPECT_EQ(x509.old->authority_id, active);
    EXPECT_FALSE(x509.prepared.has_value());
    EXPECT_EQ(jwt.active->authority_id, prepared_jwt);
    EXPECT_EQ(jwt.old->authority_id, active_jwt);
    j = journal_.Parsed();
    EXPECT_EQ(FindX509(j, active)->status(), OLD);
    EXPECT_EQ(FindX509(j, prepared)->status(), ACTIVE);
    EXPECT_EQ(keys_.live.count(FindX509(j, active)->key_id()), 0u);
    EXPECT_EQ(keys_.live.count(FindJwt(j, active_jwt)->key_id()), 0u);
    EXPECT_EQ(keys_.live, (std::set<std::string>{FindX509(j, prepared)->key_id(),
                                                  FindJwt(j, prepared_jwt)->key_id()}));
    EXPECT_EQ(BundleX509Ids(ca->LocalBundle()), (std::set<std::string>{active, prepared}));

    // Minted after activation: chains to the new authority only.
    ASSERT_OK_AND_ASSIGN(auto after, Mint(*ca, absl::Hours(1)));
    EXPECT_EQ(crypto::HexEncode(after[0].authority_key_id()), prepared);
    const crypto::Certificate new_root = CertOf(FindX509(j, prepared)->chain_der(0));
    const crypto::Certificate old_root = CertOf(FindX509(j, active)->chain_der(0));
    EXPECT_OK(crypto::VerifyChain(after, {new_root}, clock_.Now()));
    EXPECT_FALSE(crypto::VerifyChain(after, {old_root}, clock_.Now()).ok());
    EXPECT_OK(spiffe::Verify(after, BundleSetOf(ca->LocalBundle()), clock_.Now()));

    // SVIDs minted by the now-old authority still verify against the bundle
    // until they expire.
    EXPECT_OK(spiffe::Verify(minted.back().chain, BundleSetOf(ca->LocalBundle()), clock_.Now()));

    active = prepared;
    active_jwt = prepared_jwt;
  }

  // Authorities that expired were removed from the published bundle: only
  // the last two generations remain.
  clock_.Set(kStart + absl::Hours(12) * 8 + absl::Hours(9));
  ASSERT_OK(ca->Rotate());
  EXPECT_EQ(publisher_.x509_count(), 2u);
  EXPECT_EQ(publisher_.jwt_count(), 2u);
  EXPECT_EQ(journal_.Parsed().x509_size(), 2);
  EXPECT_EQ(BundleX509Ids(ca->LocalBundle()).size(), 2u);
  // The SVID of the first generation (signed by the first CA, long expired)
  // no longer verifies against the bundle.
  EXPECT_FALSE(
      spiffe::Verify(minted.front().chain, BundleSetOf(ca->LocalBundle()), clock_.Now()).ok());
}

TEST_F(CaManagerTest, RotateIsIdempotentWithinAPhase) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  const int saves = journal_.saves;
  for (int i = 0; i < 5; ++i) ASSERT_OK(ca->Rotate());
  EXPECT_EQ(journal_.saves, saves);
  clock_.Advance(absl::Hours(12));
  ASSERT_OK(ca->Rotate());
  ASSERT_OK(ca->Rotate());
  EXPECT_EQ(journal_.saves, saves + 1);
}

TEST_F(CaManagerTest, RotateAfterLongDowntimeCatchesUp) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  const std::string first = ActiveX509Id(*ca);
  // Past the activation threshold with nothing prepared: a successor is
  // prepared and activated in one call.
  clock_.Set(kStart + absl::Hours(21));
  ASSERT_OK(ca->Rotate());
  AuthorityStates states = ca->GetX509AuthorityStates();
  EXPECT_NE(states.active->authority_id, first);
  EXPECT_EQ(states.old->authority_id, first);
  EXPECT_FALSE(states.prepared.has_value());

  // Past every authority's expiry: all are replaced.
  clock_.Set(kStart + absl::Hours(24 * 10));
  ASSERT_OK(ca->Rotate());
  states = ca->GetX509AuthorityStates();
  ASSERT_TRUE(states.active.has_value());
  EXPECT_EQ(states.active->expires_at, clock_.Now() + absl::Hours(24));
  EXPECT_FALSE(states.old.has_value());
  EXPECT_EQ(publisher_.x509_count(), 1u);
  EXPECT_EQ(publisher_.jwt_count(), 1u);
  EXPECT_OK(Mint(*ca));
}

TEST_F(CaManagerTest, MintingAfterTheCaExpiredWithoutRotationIsFailedPrecondition) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  clock_.Advance(absl::Hours(25));
  EXPECT_STATUS(Mint(*ca), absl::StatusCode::kFailedPrecondition, "expired");
  JwtSvidParams params{Id("spiffe://example.org/w"), {"aud"}, absl::ZeroDuration()};
  EXPECT_STATUS(ca->MintJwtSvid(params), absl::StatusCode::kFailedPrecondition, "expired");
  ASSERT_OK(ca->Rotate());
  EXPECT_OK(Mint(*ca));
  EXPECT_OK(ca->MintJwtSvid(params));
}

TEST_F(CaManagerTest, FailedRotationChangesNothingAndIsRetried) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  const std::set<std::string> keys_before = keys_.live;
  clock_.Advance(absl::Hours(12));
  journal_.fail_save = absl::UnavailableError("datastore down");
  EXPECT_STATUS(ca->Rotate(), absl::StatusCode::kUnavailable, "datastore down");
  EXPECT_FALSE(ca->GetX509AuthorityStates().prepared.has_value());
  EXPECT_EQ(keys_.live, keys_before) << "keys generated for the failed change are deleted";

  journal_.fail_save = absl::OkStatus();
  ASSERT_OK(ca->Rotate());
  EXPECT_TRUE(ca->GetX509AuthorityStates().prepared.has_value());
}

// ---- Restart ----

TEST_F(CaManagerTest, RestartWithDiskKeysResumesSameAuthorities) {
  TempDir dir;
  const std::string keys_path = dir.File("keys.json");
  std::vector<crypto::Certificate> svid;
  AuthorityStates x509_before, jwt_before;
  {
    ASSERT_OK_AND_ASSIGN(auto disk, DiskKeyManager::Create(keys_path));
    ASSERT_OK_AND_ASSIGN(auto ca, CaManager::Create(Options(), disk.get(), nullptr, &journal_,
                                                    &publisher_, &clock_));
    clock_.Advance(absl::Hours(13));
    ASSERT_OK(ca->Rotate());
    x509_before = ca->GetX509AuthorityStates();
    jwt_before = ca->GetJwtAuthorityStates();
    ASSERT_TRUE(x509_before.prepared.has_value());
    ASSERT_OK_AND_ASSIGN(svid, Mint(*ca, absl::Hours(4)));
  }
  clock_.Advance(absl::Hours(1));
  ASSERT_OK_AND_ASSIGN(auto disk, DiskKeyManager::Create(keys_path));
  ASSERT_OK_AND_ASSIGN(auto ca, CaManager::Create(Options(), disk.get(), nullptr, &journal_,
                                                  &publisher_, &clock_));
  AuthorityStates x509 = ca->GetX509AuthorityStates();
  AuthorityStates jwt = ca->GetJwtAuthorityStates();
  EXPECT_EQ(x509.active->authority_id, x509_before.active->authority_id);
  EXPECT_EQ(x509.prepared->authority_id, x509_before.prepared->authority_id);
  EXPECT_EQ(jwt.active->authority_id, jwt_before.active->authority_id);
  EXPECT_EQ(jwt.prepared->authority_id, jwt_before.prepared->authority_id);

  // The same CA key signs: new SVIDs have the same issuer key ID and verify
  // against the same root as before the restart.
  ASSERT_OK_AND_ASSIGN(auto after, Mint(*ca));
  EXPECT_EQ(after[0].authority_key_id(), svid[0].authority_key_id());
  EXPECT_OK(spiffe::Verify(after, BundleSetOf(ca->LocalBundle()), clock_.Now()));
  EXPECT_OK(spiffe::Verify(svid, BundleSetOf(ca->LocalBundle()), clock_.Now()));
  JwtSvidParams params{Id("spiffe://example.org/w"), {"aud"}, absl::ZeroDuration()};
  ASSERT_OK_AND_ASSIGN(MintedJwtSvid token, ca->MintJwtSvid(params));
  ASSERT_OK_AND_ASSIGN(auto parsed, spiffe::ParseInsecure(token.token));
  EXPECT_EQ(parsed.key_id, jwt_before.active->authority_id);

  // The schedule continues: activation at 20h after the first start.
  clock_.Set(kStart + absl::Hours(20));
  ASSERT_OK(ca->Rotate());
  EXPECT_EQ(ActiveX509Id(*ca), x509_before.prepared->authority_id);
}

TEST_F(CaManagerTest, RestartWithMemoryKeysCreatesNewAuthoritiesAndKeepsOldPublished) {
  AuthorityStates x509_before, jwt_before;
  std::vector<crypto::Certificate> svid;
  {
    auto ca = MustCreate();
    ASSERT_NE(ca, nullptr);
    clock_.Advance(absl::Hours(13));
    ASSERT_OK(ca->Rotate());
    x509_before = ca->GetX509AuthorityStates();
    jwt_before = ca->GetJwtAuthorityStates();
    ASSERT_OK_AND_ASSIGN(svid, Mint(*ca, absl::Hours(8)));
  }
  // "Restart": the memory key manager's keys are gone.
  MemoryKeyManager fresh_memory;
  RecordingKeyManager fresh(&fresh_memory);
  clock_.Advance(absl::Minutes(5));
  ASSERT_OK_AND_ASSIGN(auto ca, CaManager::Create(Options(), &fresh, nullptr, &journal_,
                                                  &publisher_, &clock_));
  AuthorityStates x509 = ca->GetX509AuthorityStates();
  AuthorityStates jwt = ca->GetJwtAuthorityStates();
  ASSERT_TRUE(x509.active.has_value());
  EXPECT_NE(x509.active->authority_id, x509_before.active->authority_id);
  EXPECT_NE(x509.active->authority_id, x509_before.prepared->authority_id);
  EXPECT_EQ(x509.active->expires_at, clock_.Now() + absl::Hours(24));
  EXPECT_FALSE(x509.prepared.has_value());
  EXPECT_NE(jwt.active->authority_id, jwt_before.active->authority_id);

  // The previous authorities stay published (as old) until they expire.
  EXPECT_EQ(BundleX509Ids(ca->LocalBundle()),
            (std::set<std::string>{x509_before.active->authority_id,
                                   x509_before.prepared->authority_id,
                                   x509.active->authority_id}));
  EXPECT_EQ(BundleJwtIds(ca->LocalBundle()).size(), 3u);
  EXPECT_EQ(publisher_.x509_count(), 3u);
  Journal j = journal_.Parsed();
  EXPECT_EQ(FindX509(j, x509_before.active->authority_id)->status(), OLD);
  EXPECT_EQ(FindX509(j, x509_before.prepared->authority_id)->status(), OLD);
  EXPECT_OK(spiffe::Verify(svid, BundleSetOf(ca->LocalBundle()), clock_.Now()));
  ASSERT_OK_AND_ASSIGN(auto after, Mint(*ca));
  EXPECT_EQ(crypto::HexEncode(after[0].authority_key_id()), x509.active->authority_id);

  // Once the first authority expires it leaves the bundle; the one that was
  // prepared before the restart stays until its own expiry.
  clock_.Set(kStart + absl::Hours(24));
  ASSERT_OK(ca->Rotate());
  EXPECT_EQ(BundleX509Ids(ca->LocalBundle()),
            (std::set<std::string>{x509_before.prepared->authority_id, x509.active->authority_id}));
  EXPECT_FALSE(publisher_.HasX509(CertOf(FindX509(j, x509_before.active->authority_id)->chain_der(0))));
  EXPECT_FALSE(publisher_.HasJwt(jwt_before.active->authority_id));
  EXPECT_TRUE(publisher_.HasJwt(jwt_before.prepared->authority_id));
}

TEST_F(CaManagerTest, RestartAfterEverythingExpiredStartsOver) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto disk, DiskKeyManager::Create(dir.File("keys.json")));
  std::string first;
  {
    ASSERT_OK_AND_ASSIGN(auto ca, CaManager::Create(Options(), disk.get(), nullptr, &journal_,
                                                    &publisher_, &clock_));
    first = ActiveX509Id(*ca);
  }
  clock_.Advance(absl::Hours(30));
  ASSERT_OK_AND_ASSIGN(auto ca, CaManager::Create(Options(), disk.get(), nullptr, &journal_,
                                                  &publisher_, &clock_));
  EXPECT_NE(ActiveX509Id(*ca), first);
  EXPECT_EQ(journal_.Parsed().x509_size(), 1);
  EXPECT_EQ(publisher_.x509_count(), 1u);
  EXPECT_EQ(publisher_.jwt_count(), 1u);
  EXPECT_FALSE(ca->GetX509AuthorityStates().old.has_value());
}

// ---- X509-SVIDs ----

TEST_F(CaManagerTest, X509SvidHasTheStandardFields) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  clock_.Advance(absl::Minutes(30));
  ASSERT_OK_AND_ASSIGN(auto chain,
                       Mint(*ca, absl::Minutes(15), {"web.example.org", "*.web.example.org"}));
  ASSERT_EQ(chain.size(), 1u) << "a self-signed CA is the root; the chain is the leaf alone";
  const crypto::Certificate& leaf = chain[0];
  const crypto::Certificate root = ca->LocalBundle().x509_authorities().at(0);

  EXPECT_FALSE(leaf.is_ca());
  EXPECT_TRUE(leaf.has_key_usage());
  EXPECT_EQ(leaf.key_usage(), crypto::kKeyUsageDigitalSignature |
                                  crypto::kKeyUsageKeyEncipherment | crypto::kKeyUsageKeyAgreement);
  EXPECT_EQ(leaf.uri_sans(), std::vector<std::string>{"spiffe://example.org/workload"});
  EXPECT_EQ(leaf.dns_sans(), (std::vector<std::string>{"web.example.org", "*.web.example.org"}));
  EXPECT_EQ(leaf.subject(), "CN=web.example.org,O=SPIRE,C=US");
  EXPECT_EQ(leaf.issuer(), root.subject());
  EXPECT_EQ(leaf.not_before(), clock_.Now() - absl::Seconds(10));
  EXPECT_EQ(leaf.not_after(), clock_.Now() + absl::Minutes(15));
  EXPECT_EQ(leaf.public_key(), TestKey().public_key());
  EXPECT_FALSE(leaf.subject_key_id().empty());
  EXPECT_EQ(leaf.authority_key_id(), root.subject_key_id());
  // 128-bit random serial (top bit clear): at most 32 hex digits, unique.
  EXPECT_LE(leaf.serial_hex().size(), 32u);
  EXPECT_GT(leaf.serial_hex().size(), 20u);
  ASSERT_OK_AND_ASSIGN(auto again, Mint(*ca));
  EXPECT_NE(again[0].serial_hex(), leaf.serial_hex());

  ASSERT_OK_AND_ASSIGN(spiffe::SpiffeId id,
                       spiffe::Verify(chain, BundleSetOf(ca->LocalBundle()), clock_.Now()));
  EXPECT_EQ(id.ToString(), "spiffe://example.org/workload");

  X509SvidParams params{TestKey().public_key().spki_der(), Id("spiffe://example.org/workload")};
  ASSERT_OK_AND_ASSIGN(MintedX509Svid minted, ca->MintX509SvidDer(params));
  const std::vector<std::string>& der_chain = minted.chain_der;
  ASSERT_EQ(der_chain.size(), 1u);
  ASSERT_OK_AND_ASSIGN(crypto::Certificate der_leaf, crypto::Certificate::FromDer(der_chain[0]));
  EXPECT_OK(spiffe::Verify({der_leaf}, BundleSetOf(ca->LocalBundle()), clock_.Now()));
  EXPECT_EQ(minted.not_after, der_leaf.not_after());
  std::string serial_hex = crypto::HexEncode(minted.serial);
  serial_hex.erase(0, serial_hex.find_first_not_of('0'));
  EXPECT_EQ(serial_hex, der_leaf.serial_hex());
}

TEST_F(CaManagerTest, X509SvidDefaultsAndCustomSubject) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  ASSERT_OK_AND_ASSIGN(auto chain, Mint(*ca));
  EXPECT_EQ(chain[0].not_after(), clock_.Now() + absl::Hours(1));
  EXPECT_EQ(chain[0].subject(), "O=SPIRE,C=US");
  EXPECT_TRUE(chain[0].dns_sans().empty());

  X509SvidParams params{TestKey(1).public_key().spki_der(), Id("spiffe://example.org/db")};
  params.subject = {{crypto::NameAttribute::kOrganization, "Acme"},
                    {crypto::NameAttribute::kCommonName, "db"}};
  params.dns_sans = {"db.internal"};
  ASSERT_OK_AND_ASSIGN(auto custom, ca->MintX509Svid(params));
  EXPECT_EQ(custom[0].subject(), "CN=db,O=Acme");
  EXPECT_EQ(custom[0].public_key(), TestKey(1).public_key());
}

TEST_F(CaManagerTest, X509SvidTtlIsCappedAtCaExpiry) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  clock_.Advance(absl::Hours(11));
  ASSERT_OK_AND_ASSIGN(auto chain, Mint(*ca, absl::Hours(48)));
  EXPECT_EQ(chain[0].not_after(), kStart + absl::Hours(24));
  ASSERT_OK_AND_ASSIGN(auto short_chain, Mint(*ca, absl::Hours(12) + absl::Seconds(59)));
  EXPECT_EQ(short_chain[0].not_after(), kStart + absl::Hours(23) + absl::Seconds(59));
}

TEST_F(CaManagerTest, X509SvidRefusals) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  const X509SvidParams good{TestKey().public_key().spki_der(), Id("spiffe://example.org/w")};

  X509SvidParams p = good;
  p.id = Id("spiffe://other.org/w");
  EXPECT_STATUS(ca->MintX509Svid(p), absl::StatusCode::kInvalidArgument,
                "id: \"spiffe://other.org/w\" is not a member of trust domain \"example.org\"");
  EXPECT_STATUS(ca->MintX509SvidDer(p), absl::StatusCode::kInvalidArgument, "id:");
  p = good;
  p.ttl = -absl::Seconds(1);
  EXPECT_STATUS(ca->MintX509Svid(p), absl::StatusCode::kInvalidArgument, "ttl:");
  p = good;
  p.spki_der = "";
  EXPECT_STATUS(ca->MintX509Svid(p), absl::StatusCode::kInvalidArgument, "public key");
  p = good;
  p.spki_der = "\x30\x03\x02\x01\x01";
  EXPECT_STATUS(ca->MintX509Svid(p), absl::StatusCode::kInvalidArgument,
                "malformed SubjectPublicKeyInfo");

  for (const char* bad : {"", "-a.example.org", "a-.example.org", "a..b", "*.", "*", "a.*.b",
                          "foo_bar.example.org", "example.org.", "**.example.org", "a b.org",
                          "*example.org"}) {
    p = good;
    p.dns_sans = {"ok.example.org", bad};
    SCOPED_TRACE(bad);
    EXPECT_STATUS(ca->MintX509Svid(p), absl::StatusCode::kInvalidArgument, "dns:");
  }
  p = good;
  p.dns_sans = {std::string(64, 'a') + ".org"};
  EXPECT_STATUS(ca->MintX509Svid(p), absl::StatusCode::kInvalidArgument, "63");
  p = good;
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
  long_name += "org";
  p.dns_sans = {long_name};
  EXPECT_STATUS(ca->MintX509Svid(p), absl::StatusCode::kInvalidArgument, "253");

  for (const char* ok : {"localhost", "*.example.org", "a-b.Example.ORG", "123.example.org",
                         "xn--bcher-kva.example"}) {
    p = good;
    p.dns_sans = {ok};
    SCOPED_TRACE(ok);
    EXPECT_OK(ca->MintX509Svid(p));
  }
}

// ---- JWT-SVIDs ----

TEST_F(CaManagerTest, JwtSvidValidatesAgainstLocalBundleWithExpectedClaims) {
  CaOptions options = Options();
  options.jwt_issuer = "https://oidc.example.org";
  auto ca = MustCreate(options);
  ASSERT_NE(ca, nullptr);
  clock_.Advance(absl::Minutes(1) + absl::Milliseconds(700));
  const absl::Time now = clock_.Now();
  JwtSvidParams params{Id("spiffe://example.org/api"), {"aud1", "aud2"}, absl::ZeroDuration()};
  ASSERT_OK_AND_ASSIGN(MintedJwtSvid minted, ca->MintJwtSvid(params));
  EXPECT_EQ(minted.issued_at, absl::FromUnixSeconds(absl::ToUnixSeconds(now)));
  EXPECT_EQ(minted.expires_at, minted.issued_at + absl::Minutes(5));

  ASSERT_OK_AND_ASSIGN(spiffe::JwtSvid svid,
                       spiffe::ParseAndValidate(minted.token, BundleSetOf(ca->LocalBundle()),
                                                "aud2", now));
  EXPECT_EQ(svid.id.ToString(), "spiffe://example.org/api");
  EXPECT_EQ(svid.audience, (std::vector<std::string>{"aud1", "aud2"}));
  EXPECT_EQ(svid.expiry, minted.expires_at);
  EXPECT_EQ(svid.alg, "ES256");
  EXPECT_EQ(svid.key_id, ca->GetJwtAuthorityStates().active->authority_id);

  nlohmann::json claims = nlohmann::json::parse(svid.claims_json);
  EXPECT_EQ(claims["sub"], "spiffe://example.org/api");
  EXPECT_EQ(claims["iss"], "https://oidc.example.org");
  EXPECT_EQ(claims["iat"].get<int64_t>(), absl::ToUnixSeconds(minted.issued_at));
  EXPECT_EQ(claims["exp"].get<int64_t>(), absl::ToUnixSeconds(minted.expires_at));

  const std::string header_b64 = minted.token.substr(0, minted.token.find('.'));
  ASSERT_OK_AND_ASSIGN(std::string header_text, crypto::Base64UrlDecode(header_b64));
  nlohmann::json header = nlohmann::json::parse(header_text);
  EXPECT_EQ(header["alg"], "ES256");
  EXPECT_EQ(header["typ"], "JWT");
  EXPECT_EQ(header["kid"], svid.key_id);
  EXPECT_EQ(svid.key_id.size(), 32u);
  EXPECT_OK(crypto::Base64UrlDecode(svid.key_id));

  EXPECT_FALSE(spiffe::ParseAndValidate(minted.token, BundleSetOf(ca->LocalBundle()), "other",
                                        now)
                   .ok());
  // Without `iss` configured the claim is omitted.
  FakeJournalStore other_journal;
  FakeBundlePublisher other_publisher;
  ASSERT_OK_AND_ASSIGN(auto plain, CaManager::Create(Options(), &keys_, nullptr, &other_journal,
                                                     &other_publisher, &clock_));
  ASSERT_OK_AND_ASSIGN(MintedJwtSvid plain_token, plain->MintJwtSvid(params));
  ASSERT_OK_AND_ASSIGN(auto parsed, spiffe::ParseInsecure(plain_token.token));
  EXPECT_FALSE(nlohmann::json::parse(parsed.claims_json).contains("iss"));
}

TEST_F(CaManagerTest, JwtSvidTtlAndCapping) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  JwtSvidParams params{Id("spiffe://example.org/api"), {"aud"}, absl::Minutes(30)};
  ASSERT_OK_AND_ASSIGN(MintedJwtSvid minted, ca->MintJwtSvid(params));
  EXPECT_EQ(minted.expires_at, kStart + absl::Minutes(30));
  clock_.Advance(absl::Hours(10));
  params.ttl = absl::Hours(100);
  ASSERT_OK_AND_ASSIGN(minted, ca->MintJwtSvid(params));
  EXPECT_EQ(minted.expires_at, kStart + absl::Hours(24));
}

TEST_F(CaManagerTest, JwtSvidWithRsaKeyUsesRs256) {
  CaOptions options = Options();
  options.jwt_key_type = crypto::KeyType::kRsa2048;
  auto ca = MustCreate(options);
  ASSERT_NE(ca, nullptr);
  JwtSvidParams params{Id("spiffe://example.org/api"), {"aud"}, absl::ZeroDuration()};
  ASSERT_OK_AND_ASSIGN(MintedJwtSvid minted, ca->MintJwtSvid(params));
  ASSERT_OK_AND_ASSIGN(auto svid, spiffe::ParseAndValidate(
                                      minted.token, BundleSetOf(ca->LocalBundle()), "aud", kStart));
  EXPECT_EQ(svid.alg, "RS256");
}

TEST_F(CaManagerTest, JwtSvidRefusals) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  JwtSvidParams p{Id("spiffe://other.org/api"), {"aud"}, absl::ZeroDuration()};
  EXPECT_STATUS(ca->MintJwtSvid(p), absl::StatusCode::kInvalidArgument, "id:");
  p = {Id("spiffe://example.org/api"), {}, absl::ZeroDuration()};
  EXPECT_STATUS(ca->MintJwtSvid(p), absl::StatusCode::kInvalidArgument,
                "audience: at least one audience is required");
  p = {Id("spiffe://example.org/api"), {"a", ""}, absl::ZeroDuration()};
  EXPECT_STATUS(ca->MintJwtSvid(p), absl::StatusCode::kInvalidArgument, "audience:");
  p = {Id("spiffe://example.org/api"), {"a"}, -absl::Seconds(5)};
  EXPECT_STATUS(ca->MintJwtSvid(p), absl::StatusCode::kInvalidArgument, "ttl:");
}

TEST_F(CaManagerTest, JwtSvidsOfOldKeyValidateUntilKeyExpires) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  clock_.Set(kStart + absl::Hours(19));
  ASSERT_OK(ca->Rotate());
  JwtSvidParams params{Id("spiffe://example.org/api"), {"aud"}, absl::Hours(2)};
  ASSERT_OK_AND_ASSIGN(MintedJwtSvid old_token, ca->MintJwtSvid(params));
  clock_.Set(kStart + absl::Hours(20));
  ASSERT_OK(ca->Rotate());
  ASSERT_OK_AND_ASSIGN(MintedJwtSvid new_token, ca->MintJwtSvid(params));
  ASSERT_OK_AND_ASSIGN(auto old_parsed, spiffe::ParseAndValidate(old_token.token,
                                                                 BundleSetOf(ca->LocalBundle()),
                                                                 "aud", clock_.Now()));
  ASSERT_OK_AND_ASSIGN(auto new_parsed, spiffe::ParseAndValidate(new_token.token,
                                                                 BundleSetOf(ca->LocalBundle()),
                                                                 "aud", clock_.Now()));
  EXPECT_NE(old_parsed.key_id, new_parsed.key_id);
  EXPECT_EQ(new_parsed.key_id, ca->GetJwtAuthorityStates().active->authority_id);
}

// ---- localauthority ----

TEST_F(CaManagerTest, X509LocalAuthorityLifecycle) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  const std::string first = ActiveX509Id(*ca);

  EXPECT_STATUS(ca->ActivateX509Authority(first), absl::StatusCode::kFailedPrecondition,
                "no prepared authority");
  EXPECT_STATUS(ca->TaintX509Authority(first), absl::StatusCode::kFailedPrecondition,
                "the active authority cannot be tainted");

  ASSERT_OK_AND_ASSIGN(AuthorityState prepared, ca->PrepareX509Authority());
  EXPECT_EQ(prepared.expires_at, kStart + absl::Hours(24));
  EXPECT_EQ(ca->GetX509AuthorityStates().prepared->authority_id, prepared.authority_id);
  EXPECT_EQ(BundleX509Ids(ca->LocalBundle()),
            (std::set<std::string>{first, prepared.authority_id}));
  EXPECT_EQ(publisher_.x509_count(), 2u);

  EXPECT_STATUS(ca->TaintX509Authority(prepared.authority_id),
                absl::StatusCode::kFailedPrecondition, "only the old authority can be tainted");
  EXPECT_STATUS(ca->ActivateX509Authority(""), absl::StatusCode::kInvalidArgument,
                "authority_id: no authority ID provided");
  EXPECT_STATUS(ca->ActivateX509Authority(first), absl::StatusCode::kInvalidArgument,
                "only the prepared authority");
  EXPECT_STATUS(ca->ActivateX509Authority("deadbeef"), absl::StatusCode::kInvalidArgument,
                "unexpected authority ID \"deadbeef\"");

  ASSERT_OK_AND_ASSIGN(AuthorityState activated, ca->ActivateX509Authority(prepared.authority_id));
  EXPECT_EQ(activated.authority_id, prepared.authority_id);
  AuthorityStates states = ca->GetX509AuthorityStates();
  EXPECT_EQ(states.active->authority_id, prepared.authority_id);
  EXPECT_EQ(states.old->authority_id, first);
  EXPECT_FALSE(states.prepared.has_value());
  ASSERT_OK_AND_ASSIGN(auto svid, Mint(*ca));
  EXPECT_EQ(crypto::HexEncode(svid[0].authority_key_id()), prepared.authority_id);
  Journal j = journal_.Parsed();
  const crypto::Certificate first_root = CertOf(FindX509(j, first)->chain_der(0));
  EXPECT_EQ(keys_.live.count(FindX509(j, first)->key_id()), 0u);

  EXPECT_STATUS(ca->RevokeX509Authority(first), absl::StatusCode::kFailedPrecondition,
                "only a tainted authority can be revoked");
  EXPECT_STATUS(ca->TaintX509Authority(prepared.authority_id),
                absl::StatusCode::kFailedPrecondition, "the active authority cannot be tainted");
  EXPECT_STATUS(ca->TaintX509Authority("cafe"), absl::StatusCode::kInvalidArgument,
                "authority_id: no authority with ID \"cafe\"");
  EXPECT_STATUS(ca->TaintX509Authority(""), absl::StatusCode::kInvalidArgument,
                "no authority ID provided");

  ASSERT_OK_AND_ASSIGN(AuthorityState tainted, ca->TaintX509Authority(first));
  EXPECT_TRUE(tainted.tainted);
  EXPECT_TRUE(ca->GetX509AuthorityStates().old->tainted);
  EXPECT_TRUE(publisher_.X509Tainted(first_root));
  EXPECT_TRUE(FindX509(journal_.Parsed(), first)->tainted());
  EXPECT_STATUS(ca->TaintX509Authority(first), absl::StatusCode::kFailedPrecondition,
                "already tainted");
  EXPECT_STATUS(ca->RevokeX509Authority(prepared.authority_id),
                absl::StatusCode::kFailedPrecondition, "the active authority cannot be revoked");

  ASSERT_OK_AND_ASSIGN(AuthorityState revoked, ca->RevokeX509Authority(first));
  EXPECT_EQ(revoked.authority_id, first);
  EXPECT_FALSE(publisher_.HasX509(first_root));
  EXPECT_EQ(BundleX509Ids(ca->LocalBundle()), std::set<std::string>{prepared.authority_id});
  EXPECT_FALSE(ca->GetX509AuthorityStates().old.has_value());
  EXPECT_EQ(FindX509(journal_.Parsed(), first), nullptr);
  EXPECT_STATUS(ca->RevokeX509Authority(first), absl::StatusCode::kInvalidArgument,
                "no authority with ID");
}

TEST_F(CaManagerTest, PreparingAgainReplacesThePreparedAuthority) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  ASSERT_OK_AND_ASSIGN(AuthorityState first, ca->PrepareX509Authority());
  Journal j = journal_.Parsed();
  const crypto::Certificate first_cert = CertOf(FindX509(j, first.authority_id)->chain_der(0));
  const std::string first_key = FindX509(j, first.authority_id)->key_id();
  ASSERT_OK_AND_ASSIGN(AuthorityState second, ca->PrepareX509Authority());
  EXPECT_NE(first.authority_id, second.authority_id);
  EXPECT_EQ(ca->GetX509AuthorityStates().prepared->authority_id, second.authority_id);
  EXPECT_FALSE(ca->GetX509AuthorityStates().old.has_value());
  EXPECT_FALSE(publisher_.HasX509(first_cert));
  EXPECT_EQ(keys_.live.count(first_key), 0u);
  EXPECT_EQ(publisher_.x509_count(), 2u);
  EXPECT_EQ(journal_.Parsed().x509_size(), 2);
  EXPECT_STATUS(ca->ActivateX509Authority(first.authority_id), absl::StatusCode::kInvalidArgument,
                "unexpected authority ID");
  EXPECT_OK(ca->ActivateX509Authority(second.authority_id));
}

TEST_F(CaManagerTest, JwtLocalAuthorityLifecycle) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  const std::string first = ca->GetJwtAuthorityStates().active->authority_id;
  EXPECT_STATUS(ca->ActivateJwtAuthority(first), absl::StatusCode::kFailedPrecondition,
                "no prepared authority");
  ASSERT_OK_AND_ASSIGN(AuthorityState prepared, ca->PrepareJwtAuthority());
  EXPECT_TRUE(publisher_.HasJwt(prepared.authority_id));
  EXPECT_STATUS(ca->TaintJwtAuthority(prepared.authority_id), absl::StatusCode::kFailedPrecondition,
                "only the old authority can be tainted");
  EXPECT_STATUS(ca->TaintJwtAuthority(first), absl::StatusCode::kFailedPrecondition,
                "the active authority cannot be tainted");
  EXPECT_STATUS(ca->ActivateJwtAuthority("nope"), absl::StatusCode::kInvalidArgument,
                "unexpected authority ID");
  ASSERT_OK(ca->ActivateJwtAuthority(prepared.authority_id));
  EXPECT_EQ(ca->GetJwtAuthorityStates().old->authority_id, first);

  JwtSvidParams params{Id("spiffe://example.org/api"), {"aud"}, absl::ZeroDuration()};
  ASSERT_OK_AND_ASSIGN(MintedJwtSvid minted, ca->MintJwtSvid(params));
  ASSERT_OK_AND_ASSIGN(auto parsed, spiffe::ParseInsecure(minted.token));
  EXPECT_EQ(parsed.key_id, prepared.authority_id);

  EXPECT_STATUS(ca->RevokeJwtAuthority(first), absl::StatusCode::kFailedPrecondition,
                "only a tainted authority can be revoked");
  ASSERT_OK(ca->TaintJwtAuthority(first));
  EXPECT_TRUE(publisher_.JwtTainted(first));
  EXPECT_STATUS(ca->TaintJwtAuthority(first), absl::StatusCode::kFailedPrecondition,
                "already tainted");
  ASSERT_OK(ca->RevokeJwtAuthority(first));
  EXPECT_FALSE(publisher_.HasJwt(first));
  EXPECT_EQ(BundleJwtIds(ca->LocalBundle()), std::set<std::string>{prepared.authority_id});
  EXPECT_EQ(ca->LocalBundle().FindJwtAuthority(first), nullptr);
}

TEST_F(CaManagerTest, OnlyTheNewestOldAuthorityCanBeTainted) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  const std::string first = ActiveX509Id(*ca);
  ASSERT_OK_AND_ASSIGN(AuthorityState second, ca->PrepareX509Authority());
  ASSERT_OK(ca->ActivateX509Authority(second.authority_id));
  ASSERT_OK_AND_ASSIGN(AuthorityState third, ca->PrepareX509Authority());
  ASSERT_OK(ca->ActivateX509Authority(third.authority_id));
  EXPECT_EQ(ca->GetX509AuthorityStates().old->authority_id, second.authority_id);
  EXPECT_STATUS(ca->TaintX509Authority(first), absl::StatusCode::kFailedPrecondition,
                "only the old authority can be tainted");
  EXPECT_OK(ca->TaintX509Authority(second.authority_id));
  // Both old authorities are still published until they expire.
  EXPECT_EQ(BundleX509Ids(ca->LocalBundle()).size(), 3u);
}

TEST_F(CaManagerTest, FailedBundleRemovalIsRetriedByRotate) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  const std::string first = ActiveX509Id(*ca);
  const crypto::Certificate first_root = ca->LocalBundle().x509_authorities().at(0);
  ASSERT_OK_AND_ASSIGN(AuthorityState next, ca->PrepareX509Authority());
  ASSERT_OK(ca->ActivateX509Authority(next.authority_id));
  ASSERT_OK(ca->TaintX509Authority(first));

  publisher_.fail_remove = absl::UnavailableError("bundle store down");
  EXPECT_STATUS(ca->RevokeX509Authority(first), absl::StatusCode::kUnavailable,
                "bundle store down");
  EXPECT_FALSE(ca->GetX509AuthorityStates().old.has_value()) << "the revocation is journaled";
  EXPECT_TRUE(publisher_.HasX509(first_root));
  EXPECT_STATUS(ca->Rotate(), absl::StatusCode::kUnavailable, "bundle store down");

  publisher_.fail_remove = absl::OkStatus();
  ASSERT_OK(ca->Rotate());
  EXPECT_FALSE(publisher_.HasX509(first_root));
}

// ---- Upstream authority ----

class CaManagerUpstreamTest : public CaManagerTest {
 protected:
  // The intermediate expires 30h after the start: the second CA, prepared at
  // 12h, gets only 18h.
  CaManagerUpstreamTest() : pki_(MakeUpstreamPki(kStart, absl::Hours(24 * 365), absl::Hours(30))) {}

  void SetUp() override {
    WriteTestFile(dir_.File("root.pem"), pki_.root.ToPem());
    WriteTestFile(dir_.File("root.key"), pki_.root_key.ToPkcs8Pem(), 0600);
    WriteTestFile(dir_.File("intermediate.pem"), pki_.intermediate.ToPem());
    WriteTestFile(dir_.File("intermediate.key"), pki_.intermediate_key.ToPkcs8Pem(), 0600);
  }

  std::unique_ptr<DiskUpstreamAuthority> IntermediateUpstream() {
    auto upstream = DiskUpstreamAuthority::Create(
        dir_.File("intermediate.pem"), dir_.File("intermediate.key"), dir_.File("root.pem"), kStart);
    EXPECT_TRUE(upstream.ok()) << upstream.status();
    return upstream.ok() ? *std::move(upstream) : nullptr;
  }

  TempDir dir_;
  UpstreamPki pki_;
};

TEST_F(CaManagerUpstreamTest, SvidChainsThroughIntermediatesToUpstreamRoot) {
  auto upstream = IntermediateUpstream();
  ASSERT_NE(upstream, nullptr);
  auto ca = MustCreate(Options(), upstream.get());
  ASSERT_NE(ca, nullptr);

  spiffe::Bundle bundle = ca->LocalBundle();
  EXPECT_EQ(bundle.x509_authorities(), std::vector<crypto::Certificate>{pki_.root});
  EXPECT_EQ(publisher_.x509_count(), 1u);
  EXPECT_TRUE(publisher_.HasX509(pki_.root));

  AuthorityStates states = ca->GetX509AuthorityStates();
  EXPECT_EQ(states.active->upstream_authority_id,
            crypto::HexEncode(pki_.intermediate.subject_key_id()));

  ASSERT_OK_AND_ASSIGN(auto chain, Mint(*ca));
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(crypto::HexEncode(chain[0].authority_key_id()), states.active->authority_id);
  EXPECT_TRUE(chain[1].is_ca());
  EXPECT_EQ(crypto::HexEncode(chain[1].subject_key_id()), states.active->authority_id);
  EXPECT_EQ(chain[1].uri_sans(), std::vector<std::string>{"spiffe://example.org"});
  EXPECT_EQ(chain[1].authority_key_id(), pki_.intermediate.subject_key_id());
  EXPECT_EQ(chain[2], pki_.intermediate);

  spiffe::Bundle only_root(Td());
  only_root.AddX509Authority(pki_.root);
  ASSERT_OK_AND_ASSIGN(spiffe::SpiffeId id,
                       spiffe::Verify(chain, BundleSetOf(only_root), clock_.Now()));
  EXPECT_EQ(id.ToString(), "spiffe://example.org/workload");

  // The DER fast path returns the same chain shape.
  ASSERT_OK_AND_ASSIGN(MintedX509Svid minted,
                       ca->MintX509SvidDer(X509SvidParams{TestKey(2).public_key().spki_der(),
                                                          Id("spiffe://example.org/der")}));
  const std::vector<std::string>& der_chain = minted.chain_der;
  ASSERT_EQ(der_chain.size(), 3u);
  EXPECT_EQ(der_chain[1], chain[1].der());
  EXPECT_EQ(der_chain[2], pki_.intermediate.der());
  ASSERT_OK_AND_ASSIGN(std::vector<crypto::Certificate> parsed,
                       crypto::Certificate::ParseDerChain(der_chain[0] + der_chain[1] + der_chain[2]));
  EXPECT_EQ(parsed[0].public_key(), TestKey(2).public_key());
  ASSERT_OK_AND_ASSIGN(id, spiffe::Verify(parsed, BundleSetOf(only_root), clock_.Now()));
  EXPECT_EQ(id.ToString(), "spiffe://example.org/der");
}

TEST_F(CaManagerUpstreamTest, SelfSignedUpstreamGivesLeafAndCa) {
  ASSERT_OK_AND_ASSIGN(auto upstream, DiskUpstreamAuthority::Create(dir_.File("root.pem"),
                                                                    dir_.File("root.key"), "",
                                                                    kStart));
  auto ca = MustCreate(Options(), upstream.get());
  ASSERT_NE(ca, nullptr);
  ASSERT_OK_AND_ASSIGN(auto chain, Mint(*ca));
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[1].authority_key_id(), pki_.root.subject_key_id());
  EXPECT_OK(spiffe::Verify(chain, BundleSetOf(ca->LocalBundle()), clock_.Now()));
  EXPECT_EQ(ca->LocalBundle().x509_authorities(), std::vector<crypto::Certificate>{pki_.root});
}

TEST_F(CaManagerUpstreamTest, CaLifetimeIsCappedByUpstreamAndRotationFollowsIt) {
  auto upstream = IntermediateUpstream();
  ASSERT_NE(upstream, nullptr);
  auto ca = MustCreate(Options(), upstream.get());
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(ca->GetX509AuthorityStates().active->expires_at, kStart + absl::Hours(24));

  clock_.Set(kStart + absl::Hours(12));
  ASSERT_OK(ca->Rotate());
  AuthorityStates states = ca->GetX509AuthorityStates();
  ASSERT_TRUE(states.prepared.has_value());
  EXPECT_EQ(states.prepared->expires_at, pki_.intermediate.not_after());
  // Both CAs chain to the same root: the bundle still has exactly it.
  EXPECT_EQ(ca->LocalBundle().x509_authorities(), std::vector<crypto::Certificate>{pki_.root});

  clock_.Set(kStart + absl::Hours(20));
  ASSERT_OK(ca->Rotate());
  ASSERT_OK_AND_ASSIGN(auto chain, Mint(*ca, absl::Hours(20)));
  EXPECT_EQ(chain[0].not_after(), pki_.intermediate.not_after());

  // The upstream root stays published while the first CA expires.
  clock_.Set(kStart + absl::Hours(24));
  ASSERT_OK(ca->Rotate());
  EXPECT_TRUE(publisher_.HasX509(pki_.root));

  // Once the intermediate has expired no new CA can be made.
  clock_.Set(pki_.intermediate.not_after() + absl::Minutes(1));
  EXPECT_STATUS(ca->Rotate(), absl::StatusCode::kFailedPrecondition, "upstream certificate expired");
}

TEST_F(CaManagerUpstreamTest, X509TaintAndRevokeAreRefusedJwtAllowed) {
  auto upstream = IntermediateUpstream();
  ASSERT_NE(upstream, nullptr);
  auto ca = MustCreate(Options(), upstream.get());
  ASSERT_NE(ca, nullptr);
  const std::string first = ActiveX509Id(*ca);
  ASSERT_OK_AND_ASSIGN(AuthorityState next, ca->PrepareX509Authority());
  EXPECT_EQ(next.upstream_authority_id, crypto::HexEncode(pki_.intermediate.subject_key_id()));
  ASSERT_OK(ca->ActivateX509Authority(next.authority_id));
  EXPECT_STATUS(ca->TaintX509Authority(first), absl::StatusCode::kFailedPrecondition,
                "upstream authority");
  EXPECT_STATUS(ca->RevokeX509Authority(first), absl::StatusCode::kFailedPrecondition,
                "upstream authority");

  const std::string jwt_first = ca->GetJwtAuthorityStates().active->authority_id;
  ASSERT_OK_AND_ASSIGN(AuthorityState jwt_next, ca->PrepareJwtAuthority());
  ASSERT_OK(ca->ActivateJwtAuthority(jwt_next.authority_id));
  EXPECT_OK(ca->TaintJwtAuthority(jwt_first));
  EXPECT_OK(ca->RevokeJwtAuthority(jwt_first));
}

// ---- Interoperability with the openssl CLI ----

TEST(CaManagerOpenSsl, MintedSvidVerifiesWithOpenSslVerify) {
  // Real time, so that the certificates look ordinary to openssl; -attime
  // pins the verification instant anyway.
  FakeClock clock(absl::Now());
  MemoryKeyManager keys;
  FakeJournalStore journal;
  FakeBundlePublisher publisher;
  ASSERT_OK_AND_ASSIGN(auto ca,
                       CaManager::Create(Options(), &keys, nullptr, &journal, &publisher, &clock));
  X509SvidParams params{TestKey().public_key().spki_der(),
                        Id("spiffe://example.org/ns/prod/sa/web")};
  params.dns_sans = {"web.example.org"};
  ASSERT_OK_AND_ASSIGN(auto chain, ca->MintX509Svid(params));

  TempDir dir;
  WriteTestFile(dir.File("root.pem"), ca->LocalBundle().X509AuthoritiesPem());
  WriteTestFile(dir.File("leaf.pem"), chain[0].ToPem());
  const int64_t at = absl::ToUnixSeconds(clock.Now());
  auto [rc, out] = RunShell(
      absl::StrCat("openssl verify -attime ", at, " -CAfile ", dir.File("root.pem"), " ", dir.File("leaf.pem")));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(": OK"), std::string::npos) << out;

  // After the SVID's expiry openssl refuses it.
  auto [rc_late, out_late] = RunShell(absl::StrCat("openssl verify -attime ", at + 2 * 3600, " -CAfile ",
                                                   dir.File("root.pem"), " ", dir.File("leaf.pem")));
  EXPECT_NE(rc_late, 0) << out_late;
  EXPECT_NE(out_late.find("expired"), std::string::npos) << out_late;

  auto [rc_text, text] = RunShell(absl::StrCat("openssl x509 -noout -text -in ", dir.File("leaf.pem")));
  ASSERT_EQ(rc_text, 0) << text;
  EXPECT_NE(text.find("X509v3 Key Usage: critical"), std::string::npos) << text;
  EXPECT_NE(text.find("Digital Signature, Key Encipherment, Key Agreement"), std::string::npos)
      << text;
  EXPECT_NE(text.find("TLS Web Server Authentication, TLS Web Client Authentication"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("CA:FALSE"), std::string::npos) << text;
  EXPECT_NE(text.find("URI:spiffe://example.org/ns/prod/sa/web"), std::string::npos) << text;
  EXPECT_NE(text.find("DNS:web.example.org"), std::string::npos) << text;

  auto [rc_ca, ca_text] = RunShell(absl::StrCat("openssl x509 -noout -text -in ", dir.File("root.pem")));
  ASSERT_EQ(rc_ca, 0) << ca_text;
  EXPECT_NE(ca_text.find("CA:TRUE"), std::string::npos) << ca_text;
  EXPECT_NE(ca_text.find("X509v3 Key Usage: critical"), std::string::npos) << ca_text;
  EXPECT_NE(ca_text.find("Certificate Sign, CRL Sign"), std::string::npos) << ca_text;
  EXPECT_NE(ca_text.find("URI:spiffe://example.org"), std::string::npos) << ca_text;
}

TEST(CaManagerOpenSsl, UpstreamChainVerifiesWithOpenSslVerify) {
  FakeClock clock(absl::Now());
  const absl::Time now = clock.Now();
  UpstreamPki pki = MakeUpstreamPki(now, absl::Hours(24 * 365), absl::Hours(24 * 30));
  TempDir dir;
  WriteTestFile(dir.File("root.pem"), pki.root.ToPem());
  WriteTestFile(dir.File("intermediate.pem"), pki.intermediate.ToPem());
  WriteTestFile(dir.File("intermediate.key"), pki.intermediate_key.ToPkcs8Pem(), 0600);
  ASSERT_OK_AND_ASSIGN(auto upstream,
                       DiskUpstreamAuthority::Create(dir.File("intermediate.pem"),
                                                     dir.File("intermediate.key"),
                                                     dir.File("root.pem"), now));
  MemoryKeyManager keys;
  FakeJournalStore journal;
  FakeBundlePublisher publisher;
  ASSERT_OK_AND_ASSIGN(auto ca, CaManager::Create(Options(), &keys, upstream.get(), &journal,
                                                  &publisher, &clock));
  X509SvidParams params{TestKey().public_key().spki_der(), Id("spiffe://example.org/web")};
  ASSERT_OK_AND_ASSIGN(auto chain, ca->MintX509Svid(params));
  ASSERT_EQ(chain.size(), 3u);
  WriteTestFile(dir.File("leaf.pem"), chain[0].ToPem());
  WriteTestFile(dir.File("untrusted.pem"), crypto::ToPem({chain[1], chain[2]}));
  WriteTestFile(dir.File("bundle.pem"), ca->LocalBundle().X509AuthoritiesPem());
  auto [rc, out] =
      RunShell(absl::StrCat("openssl verify -attime ", absl::ToUnixSeconds(now), " -CAfile ", dir.File("bundle.pem"),
                            " -untrusted ", dir.File("untrusted.pem"), " ", dir.File("leaf.pem")));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(": OK"), std::string::npos) << out;
}

// ---- Concurrency ----

TEST_F(CaManagerTest, MintingWhileRotatingIsSafe) {
  auto ca = MustCreate();
  ASSERT_NE(ca, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> minted{0};
  absl::Mutex first_mu;
  std::string first_failure;
  auto record = [&](const absl::Status& s) {
    ++failures;
    absl::MutexLock lock(&first_mu);
    if (first_failure.empty()) first_failure = s.ToString();
  };
  const X509SvidParams x509_params{TestKey().public_key().spki_der(), Id("spiffe://example.org/w")};
  const JwtSvidParams jwt_params{Id("spiffe://example.org/w"), {"aud"}, absl::ZeroDuration()};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        if (auto r = ca->MintX509Svid(x509_params); !r.ok()) record(r.status());
        if (auto r = ca->MintJwtSvid(jwt_params); !r.ok()) record(r.status());
        ++minted;
      }
    });
  }
  for (int i = 0; i < 40; ++i) {
    clock_.Advance(absl::Hours(2));
    EXPECT_OK(ca->Rotate());
    const AuthorityStates states = ca->GetX509AuthorityStates();
    EXPECT_EQ(ca->LocalBundle().x509_authorities().size(),
              1u + states.old.has_value() + states.prepared.has_value());
  }
  while (minted.load() < 50) std::this_thread::yield();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
}

}  // namespace
}  // namespace sigil::ca
