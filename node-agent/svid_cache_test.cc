#include "node-agent/svid_cache.h"

#include "spiffe/crypto/encoding.h"

#include <atomic>

#include <gtest/gtest.h>

#include "node-agent/test_util.h"

namespace sigil::agent {
namespace {

using attestors::Selector;
using attestors::Selectors;
using sigil::agent::v1::WatchAuthorizedUpdate;
using testing::BundleProto;
using testing::FakeServerApi;
using testing::MakeEntry;
using testing::TestCa;

Selectors Sel(std::initializer_list<std::pair<const char*, const char*>> list) {
  Selectors out;
  for (const auto& [t, v] : list) out.push_back({t, v});
  return out;
}

class SvidCacheTest : public ::testing::Test {
 protected:
  SvidCacheTest()
      : root_(TestCa::Root("example.org", clock_.Now() - absl::Hours(2))),
        ca_(root_.Intermediate("example.org", clock_.Now() - absl::Hours(2))),
        cache_(spiffe::TrustDomain::FromString("example.org").value(), Options()) {}

  SvidCacheOptions Options() {
    SvidCacheOptions o;
    o.clock = &clock_;
    o.seed = 42;
    return o;
  }

  WatchAuthorizedUpdate Full(const std::vector<spire::api::types::Entry>& entries) {
    WatchAuthorizedUpdate u;
    u.set_full(true);
    u.set_revision(++revision_);
    for (const auto& e : entries) *u.add_upserted() = e;
    *u.mutable_bundle() = BundleProto("example.org", {root_.cert});
    return u;
  }
  WatchAuthorizedUpdate Delta() {
    WatchAuthorizedUpdate u;
    u.set_revision(++revision_);
    return u;
  }

  // Mints and stores SVIDs for everything due, signed by `ca`.
  int MintDue(const TestCa& ca, absl::Duration ttl = absl::Hours(1)) {
    int n = 0;
    for (const DueSvid& d : cache_.DueSvids(clock_.Now(), 100000)) {
      crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
      auto chain = ca.IssueSvid(d.spiffe_id.ToString(), key.public_key().spki_der(), clock_.Now(), clock_.Now() + ttl);
      if (cache_.StoreSvid(d.entry_id, d.version, chain, key, clock_.Now() + ttl / 2)) n++;
    }
    return n;
  }

  // SVIDs e1000.. e(1000+n-1) are due within the 60 s rotation window after
  // `now`, spread over at least half of it.
  void ExpectRenewalsSpreadOverTheWindow(int n, absl::Time now) {
    absl::Time earliest = absl::InfiniteFuture(), latest = absl::InfinitePast();
    for (int i = 0; i < n; ++i) {
      auto info = cache_.GetSvid("e" + std::to_string(1000 + i));
      ASSERT_TRUE(info.has_value());
      EXPECT_GE(info->renew_at, now);
      EXPECT_LE(info->renew_at, now + absl::Seconds(60));
      earliest = std::min(earliest, info->renew_at);
      latest = std::max(latest, info->renew_at);
    }
    EXPECT_GT(latest - earliest, absl::Seconds(30)) << "renewals must be spread over the window";
  }

  std::vector<std::string> ViewIds(const Selectors& s) {
    std::vector<std::string> out;
    for (const auto& id : cache_.View(s).identities) out.push_back(id.entry_id);
    return out;
  }

  FakeClock clock_;
  TestCa root_;
  TestCa ca_;
  SvidCache cache_;
  int64_t revision_ = 0;
};

TEST_F(SvidCacheTest, EntryMatchesWhenItsSelectorsAreASubsetOfTheWorkloads) {
  ASSERT_OK(cache_.ApplyUpdate(Full({
      MakeEntry("a", "/web", {"unix:uid:1000"}),
      MakeEntry("b", "/db", {"unix:uid:1000", "unix:gid:50"}),
      MakeEntry("c", "/k8s", {"k8s:ns:prod"}),
  })));
  EXPECT_EQ(MintDue(ca_), 3);
  EXPECT_EQ(ViewIds(Sel({{"unix", "uid:1000"}})), (std::vector<std::string>{"a"}));
  EXPECT_EQ(ViewIds(Sel({{"unix", "gid:50"}, {"unix", "uid:1000"}, {"unix", "path:/bin/x"}})),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ViewIds(Sel({{"unix", "gid:50"}})), (std::vector<std::string>{}));
  EXPECT_EQ(ViewIds({}), (std::vector<std::string>{}));
  WorkloadView v = cache_.View(Sel({{"unix", "uid:1000"}}));
  ASSERT_EQ(v.identities.size(), 1u);
  EXPECT_EQ(v.identities[0].spiffe_id.ToString(), "spiffe://example.org/web");
  EXPECT_EQ(v.identities[0].chain.size(), 2u);
  EXPECT_EQ(v.identities[0].chain.front().public_key(), v.identities[0].key.public_key());
  EXPECT_TRUE(v.synced);
  ASSERT_NE(v.bundle, nullptr);
  EXPECT_EQ(v.bundle->x509_authorities().front().der(), root_.cert.der());
}

TEST_F(SvidCacheTest, NodeAliasEntriesGetNoSvidAndNeverMatch) {
  ASSERT_OK(cache_.ApplyUpdate(Full({
      MakeEntry("alias", "/cluster/nodes", {"unix:uid:1000"}, "/spire/server"),
      MakeEntry("w", "/web", {"unix:uid:1000"}, "/cluster/nodes"),
  })));
  auto due = cache_.DueSvids(clock_.Now(), 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].entry_id, "w");
  EXPECT_EQ(MintDue(ca_), 1);
  EXPECT_EQ(ViewIds(Sel({{"unix", "uid:1000"}})), (std::vector<std::string>{"w"}));
  auto result = cache_.FetchJwtSvids(Sel({{"unix", "uid:1000"}}), "spiffe://example.org/cluster/nodes", {"aud"});
  EXPECT_STATUS(result, absl::StatusCode::kPermissionDenied, "no identity issued for spiffe://example.org/cluster/nodes");
}

TEST_F(SvidCacheTest, FullUpdateReplacesAndDeltasApply) {
  EXPECT_FALSE(cache_.synced());
  ASSERT_OK(cache_.ApplyUpdate(Full({MakeEntry("a", "/a", {"u:1"}), MakeEntry("b", "/b", {"u:1"})})));
  EXPECT_TRUE(cache_.synced());
  EXPECT_EQ(cache_.entry_count(), 2u);
  WatchAuthorizedUpdate d = Delta();
  d.add_removed_entry_ids("a");
  *d.add_upserted() = MakeEntry("c", "/c", {"u:1"});
  ASSERT_OK(cache_.ApplyUpdate(d));
  EXPECT_EQ(cache_.entry_count(), 2u);
  EXPECT_EQ(MintDue(ca_), 2);
  EXPECT_EQ(ViewIds(Sel({{"u", "1"}})), (std::vector<std::string>{"b", "c"}));
  // A full update is the whole set: c disappears.
  ASSERT_OK(cache_.ApplyUpdate(Full({MakeEntry("b", "/b", {"u:1"})})));
  EXPECT_EQ(ViewIds(Sel({{"u", "1"}})), (std::vector<std::string>{"b"}));
  EXPECT_EQ(cache_.revision(), revision_);
}

TEST_F(SvidCacheTest, DeletedEntryLosesItsSvidAtOnceAndWatchersHear) {
  ASSERT_OK(cache_.ApplyUpdate(Full({MakeEntry("a", "/a", {"u:1"})})));
  MintDue(ca_);
  std::atomic<int> calls{0};
  auto sub = cache_.Subscribe(Sel({{"u", "1"}}), [&] { calls++; });
  WatchAuthorizedUpdate d = Delta();
  d.add_removed_entry_ids("a");
  ASSERT_OK(cache_.ApplyUpdate(d));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(cache_.View(Sel({{"u", "1"}})).identities.empty());
  EXPECT_EQ(cache_.svid_count(), 0u);
  EXPECT_FALSE(cache_.GetSvid("a").has_value());
}

TEST_F(SvidCacheTest, ChangedSpiffeIdDropsTheSvidButSelectorChangeKeepsIt) {
  ASSERT_OK(cache_.ApplyUpdate(Full({MakeEntry("a", "/a", {"u:1"})})));
  MintDue(ca_);
  std::string serial = cache_.GetSvid("a")->chain.front().serial_hex();
  WatchAuthorizedUpdate d = Delta();
  *d.add_upserted() = MakeEntry("a", "/a", {"u:1", "u:2"});
  ASSERT_OK(cache_.ApplyUpdate(d));
  ASSERT_TRUE(cache_.GetSvid("a").has_value());
  EXPECT_EQ(cache_.GetSvid("a")->chain.front().serial_hex(), serial);
  EXPECT_TRUE(cache_.View(Sel({{"u", "1"}})).identities.empty());
  EXPECT_EQ(cache_.View(Sel({{"u", "1"}, {"u", "2"}})).identities.size(), 1u);

  DueSvid before = cache_.DueSvids(clock_.Now() + absl::Hours(1), 1).at(0);
  WatchAuthorizedUpdate moved = Delta();
  *moved.add_upserted() = MakeEntry("a", "/renamed", {"u:1", "u:2"});
  ASSERT_OK(cache_.ApplyUpdate(moved));
  EXPECT_FALSE(cache_.GetSvid("a").has_value()) << "an SVID for the old SPIFFE ID must not be served";
  auto due = cache_.DueSvids(clock_.Now(), 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].spiffe_id.ToString(), "spiffe://example.org/renamed");
  // An SVID minted for the old version is refused.
  crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  auto chain = ca_.IssueSvid("spiffe://example.org/a", key.public_key().spki_der(), clock_.Now(),
                             clock_.Now() + absl::Hours(1));
  EXPECT_FALSE(cache_.StoreSvid("a", before.version, chain, key, clock_.Now() + absl::Minutes(30)));
}

TEST_F(SvidCacheTest, OnlyAffectedSubscribersAreNotified) {
  ASSERT_OK(cache_.ApplyUpdate(Full({MakeEntry("a", "/a", {"u:1"}), MakeEntry("b", "/b", {"u:2"})})));
  std::atomic<int> one{0}, two{0}, both{0};
  auto s1 = cache_.Subscribe(Sel({{"u", "1"}}), [&] { one++; });
  auto s2 = cache_.Subscribe(Sel({{"u", "2"}}), [&] { two++; });
  auto s3 = cache_.Subscribe(Sel({{"u", "2"}, {"u", "1"}}), [&] { both++; });
  WatchAuthorizedUpdate d = Delta();
  *d.add_upserted() = MakeEntry("b", "/b", {"u:2"});
  d.mutable_upserted(0)->set_hint("changed");
  ASSERT_OK(cache_.ApplyUpdate(d));
  EXPECT_EQ(one.load(), 0);
  EXPECT_EQ(two.load(), 1);
  EXPECT_EQ(both.load(), 1);
  // An identical upsert is no change at all.
  ASSERT_OK(cache_.ApplyUpdate(d));
  EXPECT_EQ(two.load(), 1);
  // A bundle change reaches everyone.
  TestCa other = TestCa::Root("example.org", clock_.Now() - absl::Hours(1), "second root");
  WatchAuthorizedUpdate b = Delta();
  *b.mutable_bundle() = BundleProto("example.org", {root_.cert, other.cert});
  ASSERT_OK(cache_.ApplyUpdate(b));
  EXPECT_EQ(one.load(), 1);
  EXPECT_EQ(two.load(), 2);
  EXPECT_EQ(both.load(), 2);
  // After its handle is gone a subscriber is never called again.
  s1.reset();
  *b.mutable_bundle() = BundleProto("example.org", {root_.cert});
  ASSERT_OK(cache_.ApplyUpdate(b));
  EXPECT_EQ(one.load(), 1);
  EXPECT_EQ(two.load(), 3);
}

TEST_F(SvidCacheTest, ThousandIdenticalSubscribersFormOneGroupAndAllHear) {
  ASSERT_OK(cache_.ApplyUpdate(Full({MakeEntry("a", "/a", {"u:1"})})));
  std::atomic<int> calls{0};
  std::vector<std::unique_ptr<IdentitySource::Subscription>> subs;
  for (int i = 0; i < 1000; ++i) subs.push_back(cache_.Subscribe(Sel({{"u", "1"}, {"p", "x"}}), [&] { calls++; }));
  auto other = cache_.Subscribe(Sel({{"u", "9"}}), [&] { calls += 100000; });
  EXPECT_EQ(cache_.subscriber_groups(), 2u);
  EXPECT_EQ(MintDue(ca_), 1);
  EXPECT_EQ(calls.load(), 1000);
  subs.clear();
  EXPECT_EQ(cache_.subscriber_groups(), 1u);
}

TEST_F(SvidCacheTest, InvalidEntriesAreSkippedAndReportedWhileTheRestApplies) {
  auto bad_id = MakeEntry("bad", "/x", {"u:1"});
  bad_id.mutable_spiffe_id()->set_path("no-leading-slash");
  auto no_id = MakeEntry("", "/y", {"u:1"});
  auto s = cache_.ApplyUpdate(Full({bad_id, no_id, MakeEntry("good", "/good", {"u:1"})}));
  EXPECT_STATUS(s, absl::StatusCode::kInvalidArgument, "entry bad spiffe_id");
  EXPECT_STATUS(s, absl::StatusCode::kInvalidArgument, "upserted[1]: entry without id");
  EXPECT_EQ(cache_.entry_count(), 1u);
  EXPECT_TRUE(cache_.synced());
}

TEST_F(SvidCacheTest, BundleOfAnotherTrustDomainIsRefused) {
  WatchAuthorizedUpdate u = Full({});
  *u.mutable_bundle() = BundleProto("evil.org", {root_.cert});
  EXPECT_STATUS(cache_.ApplyUpdate(u), absl::StatusCode::kInvalidArgument, "expected the bundle of example.org, got evil.org");
  EXPECT_EQ(cache_.bundle(), nullptr);
}

TEST_F(SvidCacheTest, TaintedAuthorityMakesItsSvidsDueAtOnce) {
  ASSERT_OK(cache_.ApplyUpdate(Full({MakeEntry("a", "/a", {"u:1"}), MakeEntry("b", "/b", {"u:2"})})));
  TestCa other_root = TestCa::Root("example.org", clock_.Now() - absl::Hours(1), "other root");
  WatchAuthorizedUpdate both = Delta();
  *both.mutable_bundle() = BundleProto("example.org", {root_.cert, other_root.cert});
  ASSERT_OK(cache_.ApplyUpdate(both));
  // a under the first root (via an intermediate), b under the other root.
  for (const DueSvid& d : cache_.DueSvids(clock_.Now(), 10)) {
    const TestCa& ca = d.entry_id == "a" ? ca_ : other_root;
    crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    auto chain = ca.IssueSvid(d.spiffe_id.ToString(), key.public_key().spki_der(), clock_.Now(),
                              clock_.Now() + absl::Hours(1));
    ASSERT_TRUE(cache_.StoreSvid(d.entry_id, d.version, chain, key, clock_.Now() + absl::Minutes(30)));
  }
  EXPECT_TRUE(cache_.DueSvids(clock_.Now(), 10).empty());
  WatchAuthorizedUpdate taint = Delta();
  *taint.mutable_bundle() = BundleProto("example.org", {root_.cert, other_root.cert}, {true, false});
  ASSERT_OK(cache_.ApplyUpdate(taint));
  auto due = cache_.DueSvids(clock_.Now(), 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].entry_id, "a");
  // Still served until the replacement arrives.
  EXPECT_EQ(cache_.View(Sel({{"u", "1"}})).identities.size(), 1u);
}

TEST_F(SvidCacheTest, AuthorityLeavingTheBundleMakesItsSvidsDueAtOnce) {
  TestCa other_root = TestCa::Root("example.org", clock_.Now() - absl::Hours(1), "other root");
  WatchAuthorizedUpdate u = Full({MakeEntry("a", "/a", {"u:1"})});
  *u.mutable_bundle() = BundleProto("example.org", {root_.cert, other_root.cert});
  ASSERT_OK(cache_.ApplyUpdate(u));
  MintDue(other_root);
  EXPECT_TRUE(cache_.DueSvids(clock_.Now(), 10).empty());
  WatchAuthorizedUpdate drop = Delta();
  *drop.mutable_bundle() = BundleProto("example.org", {root_.cert});
  ASSERT_OK(cache_.ApplyUpdate(drop));
  EXPECT_EQ(cache_.DueSvids(clock_.Now(), 10).size(), 1u);
}

TEST_F(SvidCacheTest, NewerSigningCaSpreadsRenewalOfTheOthersOverTheWindow) {
  std::vector<spire::api::types::Entry> entries;
  for (int i = 0; i < 200; ++i) entries.push_back(MakeEntry("e" + std::to_string(1000 + i), "/w" + std::to_string(i), {"u:1"}));
  ASSERT_OK(cache_.ApplyUpdate(Full(entries)));
  EXPECT_EQ(MintDue(ca_), 200);
  clock_.Advance(absl::Minutes(5));
  TestCa rotated = root_.Intermediate("example.org", clock_.Now() - absl::Minutes(1), "rotated");
  WatchAuthorizedUpdate d = Delta();
  *d.add_upserted() = MakeEntry("new", "/new", {"u:1"});
  ASSERT_OK(cache_.ApplyUpdate(d));
  EXPECT_EQ(MintDue(rotated), 1);
  const absl::Time now = clock_.Now();
  ExpectRenewalsSpreadOverTheWindow(200, now);
  // The new CA's own SVID keeps its half-life schedule.
  EXPECT_GT(cache_.GetSvid("new")->renew_at, now + absl::Minutes(20));
}

TEST_F(SvidCacheTest, AnnouncedCaRotationSpreadsRenewalOfEverySvidOfOtherCas) {
  std::vector<spire::api::types::Entry> entries;
  for (int i = 0; i < 100; ++i) entries.push_back(MakeEntry("e" + std::to_string(1000 + i), "/w" + std::to_string(i), {"u:1"}));
  WatchAuthorizedUpdate full = Full(entries);
  full.set_active_x509_authority_id(crypto::HexEncode(ca_.cert.subject_key_id()));
  ASSERT_OK(cache_.ApplyUpdate(full));
  EXPECT_EQ(MintDue(ca_), 100);
  clock_.Advance(absl::Minutes(5));
  const absl::Time now = clock_.Now();
  // The same authority announced again changes nothing.
  WatchAuthorizedUpdate same = Delta();
  same.set_active_x509_authority_id(crypto::HexEncode(ca_.cert.subject_key_id()));
  ASSERT_OK(cache_.ApplyUpdate(same));
  EXPECT_GT(cache_.GetSvid("e1000")->renew_at, now + absl::Minutes(20));

  // The server activated another CA: no SVID of it exists yet, yet every
  // SVID moves to it within the window, spread out.
  WatchAuthorizedUpdate rotated = Delta();
  rotated.set_active_x509_authority_id("00112233445566778899aabbccddeeff00112233");
  ASSERT_OK(cache_.ApplyUpdate(rotated));
  ExpectRenewalsSpreadOverTheWindow(100, now);
}

TEST_F(SvidCacheTest, ExpiredSvidsAreNeverServedAndMaintainDropsThem) {
  ASSERT_OK(cache_.ApplyUpdate(Full({MakeEntry("a", "/a", {"u:1"})})));
  MintDue(ca_, absl::Minutes(10));
  std::atomic<int> calls{0};
  auto sub = cache_.Subscribe(Sel({{"u", "1"}}), [&] { calls++; });
  clock_.Advance(absl::Minutes(10));
  EXPECT_TRUE(cache_.View(Sel({{"u", "1"}})).identities.empty());
  cache_.Maintain(clock_.Now());
  EXPECT_EQ(cache_.svid_count(), 0u);
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(SvidCacheTest, FederatedBundlesFollowTheEntriesThatNeedThem) {
  auto e = MakeEntry("a", "/a", {"u:1"});
  e.add_federates_with("partner.org");
  WatchAuthorizedUpdate u = Full({e, MakeEntry("b", "/b", {"u:2"})});
  TestCa partner = TestCa::Root("partner.org", clock_.Now() - absl::Hours(1));
  *u.add_federated_bundles() = BundleProto("partner.org", {partner.cert});
  ASSERT_OK(cache_.ApplyUpdate(u));
  MintDue(ca_);
  WorkloadView v = cache_.View(Sel({{"u", "1"}}));
  ASSERT_EQ(v.federated_bundles.count("partner.org"), 1u);
  EXPECT_EQ(v.identities.at(0).federates_with, (std::vector<std::string>{"partner.org"}));
  EXPECT_TRUE(cache_.View(Sel({{"u", "2"}})).federated_bundles.empty());
  EXPECT_EQ(cache_.AllBundles().bundles().size(), 2u);
  std::atomic<int> calls{0};
  auto sub = cache_.Subscribe(Sel({{"u", "1"}}), [&] { calls++; });
  WatchAuthorizedUpdate removed = Delta();
  removed.add_removed_federated_bundles("partner.org");
  ASSERT_OK(cache_.ApplyUpdate(removed));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(cache_.View(Sel({{"u", "1"}})).federated_bundles.empty());
  EXPECT_EQ(cache_.AllBundles().bundles().size(), 1u);
}

class JwtCacheTest : public SvidCacheTest {
 protected:
  JwtCacheTest() : api_(&clock_, ca_) {
    api_.SetJwtTtl(absl::Minutes(10));
    api_.SetJwtIdentity("a", "spiffe://example.org/a");
    api_.SetJwtIdentity("b", "spiffe://example.org/b");
    cache_.SetServerApi(&api_);
    EXPECT_TRUE(cache_.ApplyUpdate(Full({MakeEntry("a", "/a", {"u:1"}), MakeEntry("b", "/b", {"u:1", "g:1"})})).ok());
  }
  FakeServerApi api_;
};

TEST_F(JwtCacheTest, TokensAreCachedUntilHalfTheirLifetime) {
  ASSERT_OK_AND_ASSIGN(auto first, cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"x", "y"}));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].spiffe_id.ToString(), "spiffe://example.org/a");
  EXPECT_EQ(api_.jwt_minted(), 1);
  clock_.Advance(absl::Minutes(4));
  // Same audience in another order: a cache hit.
  ASSERT_OK_AND_ASSIGN(auto second, cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"y", "x", "x"}));
  EXPECT_EQ(second[0].token, first[0].token);
  EXPECT_EQ(api_.jwt_minted(), 1);
  // Another audience is another token.
  ASSERT_OK(cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"z"}).status());
  EXPECT_EQ(api_.jwt_minted(), 2);
  clock_.Advance(absl::Minutes(1) + absl::Seconds(1));
  ASSERT_OK_AND_ASSIGN(auto third, cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"x", "y"}));
  EXPECT_EQ(api_.jwt_minted(), 3);
  EXPECT_NE(third[0].token, first[0].token);
}

TEST_F(JwtCacheTest, OneTokenPerMatchingIdentityOrOnlyTheRequestedOne) {
  ASSERT_OK_AND_ASSIGN(auto all, cache_.FetchJwtSvids(Sel({{"u", "1"}, {"g", "1"}}), "", {"aud"}));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].spiffe_id.ToString(), "spiffe://example.org/a");
  EXPECT_EQ(all[1].spiffe_id.ToString(), "spiffe://example.org/b");
  ASSERT_OK_AND_ASSIGN(auto one, cache_.FetchJwtSvids(Sel({{"u", "1"}, {"g", "1"}}), "spiffe://example.org/b", {"aud"}));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].spiffe_id.ToString(), "spiffe://example.org/b");
  EXPECT_STATUS(cache_.FetchJwtSvids(Sel({{"u", "1"}}), "spiffe://example.org/b", {"aud"}),
                absl::StatusCode::kPermissionDenied, "no identity issued for spiffe://example.org/b");
  EXPECT_STATUS(cache_.FetchJwtSvids(Sel({{"u", "7"}}), "", {"aud"}), absl::StatusCode::kPermissionDenied,
                "no identity issued");
  EXPECT_STATUS(cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {}), absl::StatusCode::kInvalidArgument,
                "audience is required");
}

TEST_F(JwtCacheTest, UnreachableServerIsUnavailableButCachedTokensStillServe) {
  ASSERT_OK(cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"cached"}).status());
  api_.SetUnavailable(true);
  ASSERT_OK(cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"cached"}).status());
  EXPECT_STATUS(cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"fresh"}), absl::StatusCode::kUnavailable,
                "cannot mint a JWT-SVID for spiffe://example.org/a");
  cache_.SetServerApi(nullptr);
  EXPECT_STATUS(cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"other"}), absl::StatusCode::kUnavailable,
                "not attested");
}

TEST_F(JwtCacheTest, DeletedEntryDropsItsCachedTokens) {
  ASSERT_OK(cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"x"}).status());
  WatchAuthorizedUpdate d = Delta();
  d.add_removed_entry_ids("a");
  ASSERT_OK(cache_.ApplyUpdate(d));
  *d.mutable_removed_entry_ids() = {};
  *d.add_upserted() = MakeEntry("a", "/a", {"u:1"});
  ASSERT_OK(cache_.ApplyUpdate(d));
  ASSERT_OK(cache_.FetchJwtSvids(Sel({{"u", "1"}}), "", {"x"}).status());
  EXPECT_EQ(api_.jwt_minted(), 2);
}

}  // namespace
}  // namespace sigil::agent
