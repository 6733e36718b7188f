#include "node-agent/svid_rotator.h"
#include "node-agent/renewal.h"

#include <algorithm>
#include <map>

#include <gtest/gtest.h>

#include "node-agent/test_util.h"

namespace sigil::agent {
namespace {

using attestors::Selectors;
using sigil::agent::v1::WatchAuthorizedUpdate;
using testing::BundleProto;
using testing::FakeServerApi;
using testing::MakeEntry;
using testing::TestCa;

class SvidRotatorTest : public ::testing::Test {
 protected:
  SvidRotatorTest()
      : root_(TestCa::Root("example.org", clock_.Now() - absl::Hours(2))),
        ca_(root_.Intermediate("example.org", clock_.Now() - absl::Hours(2))),
        cache_(spiffe::TrustDomain::FromString("example.org").value(), CacheOptions()),
        api_(&clock_, ca_),
        rotator_(&cache_, &api_, RotatorOptions()) {}

  SvidCacheOptions CacheOptions() {
    SvidCacheOptions o;
    o.clock = &clock_;
    o.seed = 7;
    return o;
  }
  SvidRotatorOptions RotatorOptions() {
    SvidRotatorOptions o;
    o.clock = &clock_;
    o.seed = 11;
    return o;
  }

  void Sync(int n, std::vector<bool> tainted = {}) {
    WatchAuthorizedUpdate u;
    u.set_full(true);
    for (int i = 0; i < n; ++i) {
      *u.add_upserted() = MakeEntry("e" + std::to_string(10000 + i), "/w/" + std::to_string(i), {"unix:uid:1000"});
    }
    *u.mutable_bundle() = BundleProto("example.org", {root_.cert}, tainted);
    ASSERT_OK(cache_.ApplyUpdate(u));
  }

  std::map<std::string, std::string> Serials() {
    std::map<std::string, std::string> out;
    for (const auto& id : cache_.View({{"unix", "uid:1000"}}).identities) {
      out[id.entry_id] = id.chain.front().serial_hex();
    }
    return out;
  }

  FakeClock clock_;
  TestCa root_;
  TestCa ca_;
  SvidCache cache_;
  FakeServerApi api_;
  SvidRotator rotator_;
};

TEST_F(SvidRotatorTest, NewEntriesAreMintedInBatchesOfAtMost500) {
  Sync(1200);
  SvidRotator::PassResult r = rotator_.RotateDue();
  EXPECT_EQ(r.minted, 1200);
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(api_.batch_calls(), 3);
  EXPECT_EQ(api_.largest_batch(), 500u);
  EXPECT_EQ(cache_.svid_count(), 1200u);
  EXPECT_EQ(rotator_.RotateDue().minted, 0);
  EXPECT_EQ(api_.batch_calls(), 3);
}

TEST_F(SvidRotatorTest, ThousandSvidsExpiringTogetherAreRenewedOverAWindowAroundHalfLife) {
  Sync(1000);
  const absl::Time minted_at = clock_.Now();
  ASSERT_EQ(rotator_.RotateDue().minted, 1000);
  std::map<std::string, std::string> before = Serials();
  ASSERT_EQ(before.size(), 1000u);
  const absl::Duration step = absl::Seconds(30);
  std::map<std::string, absl::Duration> renewed_after;
  int most_in_one_step = 0;
  while (clock_.Now() < minted_at + absl::Hours(1)) {
    clock_.Advance(step);
    int n = rotator_.RotateDue().minted;
    most_in_one_step = std::max(most_in_one_step, n);
    for (const auto& [id, serial] : Serials()) {
      if (serial != before[id] && renewed_after.count(id) == 0) renewed_after[id] = clock_.Now() - minted_at;
    }
  }
  ASSERT_EQ(renewed_after.size(), 1000u) << "every SVID must be renewed before it expires";
  absl::Duration first = absl::InfiniteDuration(), last = absl::ZeroDuration();
  for (const auto& [_, d] : renewed_after) {
    first = std::min(first, d);
    last = std::max(last, d);
  }
  // Around half of the hour: within 40%..60% (+ one step of granularity).
  EXPECT_GE(first, absl::Minutes(24));
  EXPECT_LE(last, absl::Minutes(36) + step);
  EXPECT_GE(last - first, absl::Minutes(10)) << "renewals must be spread, not simultaneous";
  EXPECT_LE(most_in_one_step, 100) << "no thundering herd";
}

TEST_F(SvidRotatorTest, OutageKeepsServingUntilExpiryThenRecoversWithBackoff) {
  Sync(3);
  ASSERT_EQ(rotator_.RotateDue().minted, 3);
  std::map<std::string, std::string> before = Serials();
  api_.SetUnavailable(true);
  clock_.Advance(absl::Minutes(40));  // past every renewal point
  SvidRotator::PassResult r = rotator_.RotateDue();
  EXPECT_EQ(r.minted, 0);
  EXPECT_EQ(r.failed, 3);
  EXPECT_STATUS(r.last_error, absl::StatusCode::kUnavailable, "fake server is down");
  EXPECT_EQ(Serials(), before) << "workloads keep their SVIDs during the outage";
  // Backing off: an immediate retry does not call the server.
  int calls = api_.batch_calls();
  rotator_.RotateDue();
  EXPECT_EQ(api_.batch_calls(), calls);
  EXPECT_LE(cache_.NextEvent(), clock_.Now() + absl::Seconds(1));
  // Repeated failures back off up to 30 s.
  for (int i = 0; i < 8; ++i) {
    clock_.Advance(absl::Seconds(31));
    rotator_.RotateDue();
  }
  EXPECT_GE(cache_.NextEvent() - clock_.Now(), absl::Seconds(15));
  EXPECT_EQ(Serials(), before);
  // Past expiry nothing is served.
  clock_.Advance(absl::Minutes(20));
  cache_.Maintain(clock_.Now());
  EXPECT_TRUE(Serials().empty());
  // The server comes back: the next retry mints everything again.
  api_.SetUnavailable(false);
  clock_.Advance(absl::Seconds(31));
  EXPECT_EQ(rotator_.RotateDue().minted, 3);
  EXPECT_EQ(Serials().size(), 3u);
}

TEST_F(SvidRotatorTest, BackoffDoublesFromOneSecondToThirtyWithJitter) {
  for (int i = 0; i < 20; ++i) {
    absl::Duration b1 = rotator_.Backoff(1);
    EXPECT_GE(b1, absl::Milliseconds(500));
    EXPECT_LE(b1, absl::Seconds(1));
    absl::Duration b3 = rotator_.Backoff(3);
    EXPECT_GE(b3, absl::Seconds(2));
    EXPECT_LE(b3, absl::Seconds(4));
    absl::Duration b20 = rotator_.Backoff(20);
    EXPECT_GE(b20, absl::Seconds(15));
    EXPECT_LE(b20, absl::Seconds(30));
  }
}

TEST_F(SvidRotatorTest, TaintedAuthorityIsRenewedImmediately) {
  Sync(5);
  ASSERT_EQ(rotator_.RotateDue().minted, 5);
  std::map<std::string, std::string> before = Serials();
  // The server moves to a new root and taints the old one.
  TestCa new_root = TestCa::Root("example.org", clock_.Now() - absl::Hours(1), "new root");
  api_.SetCa(new_root);
  clock_.Advance(absl::Minutes(1));
  WatchAuthorizedUpdate u;
  *u.mutable_bundle() = BundleProto("example.org", {root_.cert, new_root.cert}, {true, false});
  ASSERT_OK(cache_.ApplyUpdate(u));
  EXPECT_EQ(rotator_.RotateDue().minted, 5);
  for (const auto& [id, serial] : Serials()) EXPECT_NE(serial, before[id]) << id;
  EXPECT_EQ(rotator_.RotateDue().minted, 0) << "the new SVIDs are not tainted";
}

TEST_F(SvidRotatorTest, CaRotationRenewsTheRestWithinTheWindow) {
  Sync(100);
  ASSERT_EQ(rotator_.RotateDue().minted, 100);
  std::map<std::string, std::string> before = Serials();
  clock_.Advance(absl::Minutes(2));
  api_.SetCa(root_.Intermediate("example.org", clock_.Now() - absl::Seconds(30), "next CA"));
  WatchAuthorizedUpdate d;
  *d.add_upserted() = MakeEntry("new", "/new", {"unix:uid:1000"});
  ASSERT_OK(cache_.ApplyUpdate(d));
  ASSERT_EQ(rotator_.RotateDue().minted, 1);
  int renewed = 0, most_in_one_step = 0;
  for (int step = 1; step <= 13; ++step) {
    clock_.Advance(absl::Seconds(5));
    int n = rotator_.RotateDue().minted;
    most_in_one_step = std::max(most_in_one_step, n);
    renewed += n;
  }
  EXPECT_EQ(renewed, 100) << "everything from the old CA is renewed within the 60 s window";
  EXPECT_LT(most_in_one_step, 40) << "spread over the window, not at once";
  for (const auto& [id, serial] : Serials()) {
    if (id != "new") {
      EXPECT_NE(serial, before[id]) << id;
    }
  }
}

TEST_F(SvidRotatorTest, RefusedEntryIsRetriedWithBackoffWhileOthersSucceed) {
  Sync(3);
  api_.RefuseEntry("e10001", absl::NotFoundError("entry not authorized"));
  SvidRotator::PassResult r = rotator_.RotateDue();
  EXPECT_EQ(r.minted, 2);
  EXPECT_EQ(r.failed, 1);
  EXPECT_STATUS(r.last_error, absl::StatusCode::kNotFound, "not authorized");
  EXPECT_EQ(rotator_.RotateDue().failed, 0) << "backing off";
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(rotator_.RotateDue().failed, 1);
}

TEST_F(SvidRotatorTest, SvidNotChainingToTheBundleIsRejected) {
  Sync(1);
  api_.SetCa(TestCa::Root("example.org", clock_.Now() - absl::Hours(1), "rogue"));
  SvidRotator::PassResult r = rotator_.RotateDue();
  EXPECT_EQ(r.minted, 0);
  EXPECT_STATUS(r.last_error, absl::StatusCode::kInvalidArgument, "does not verify against the bundle");
  EXPECT_EQ(cache_.svid_count(), 0u);
}

}  // namespace
}  // namespace sigil::agent

namespace sigil::agent {
namespace {

TEST(RenewalTime, CountsTheLifetimeFromIssuanceNotFromTheBackdatedNotBefore) {
  const absl::Time issued = absl::FromUnixSeconds(1000);
  // An 8 s SVID backdated by 10 s: half-life is 4 s after issuance, not
  // already past.
  EXPECT_EQ(RenewalTime(issued - absl::Seconds(10), issued + absl::Seconds(8), 0.5), issued + absl::Seconds(4));
  // A 1 h SVID.
  EXPECT_EQ(RenewalTime(issued - absl::Seconds(10), issued + absl::Hours(1), 0.5), issued + absl::Minutes(30));
  // A certificate shorter than the backdate (not from a backdating issuer).
  EXPECT_EQ(RenewalTime(issued, issued + absl::Seconds(4), 0.5), issued + absl::Seconds(2));
}

}  // namespace
}  // namespace sigil::agent
