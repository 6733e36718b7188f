#include "node-agent/state.h"

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "node-agent/test_util.h"

namespace sigil::agent {
namespace {

using testing::ModeOf;
using testing::TempDir;
using testing::TestCa;

spiffe::TrustDomain Td() { return spiffe::TrustDomain::FromString("example.org").value(); }

spiffe::X509Svid MakeSvid(const TestCa& ca, const std::string& id = "spiffe://example.org/spire/agent/join_token/t") {
  crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  const absl::Time now = absl::Now();
  auto chain = ca.IssueSvid(id, key.public_key().spki_der(), now - absl::Minutes(1), now + absl::Hours(1));
  return spiffe::X509Svid{spiffe::SpiffeId::FromString(id).value(), chain, key, ""};
}

TEST(AgentState, PrepareCreatesTheDataDirPrivate) {
  TempDir tmp;
  AgentStateStore store(tmp.File("a/b/data"), Td());
  ASSERT_OK(store.Prepare());
  EXPECT_EQ(ModeOf(tmp.File("a/b/data")), 0700);
  // Idempotent.
  ASSERT_OK(store.Prepare());
}

TEST(AgentState, PrepareRefusesAFileInPlaceOfTheDataDir) {
  TempDir tmp;
  ASSERT_OK(WriteFileAtomic(tmp.File("data"), "x", 0600));
  AgentStateStore store(tmp.File("data"), Td());
  EXPECT_STATUS(store.Prepare(), absl::StatusCode::kFailedPrecondition, "is not a directory");
}

TEST(AgentState, SvidRoundTripsWithPrivateKeyFile) {
  TempDir tmp;
  AgentStateStore store(tmp.File("data"), Td());
  ASSERT_OK(store.Prepare());
  TestCa ca = TestCa::Root("example.org", absl::Now() - absl::Hours(1)).Intermediate("example.org", absl::Now() - absl::Hours(1));
  spiffe::X509Svid svid = MakeSvid(ca);
  ASSERT_OK(store.SaveSvid(svid));
  EXPECT_EQ(ModeOf(store.Path(kAgentKeyFile)), 0600);
  EXPECT_EQ(ModeOf(store.Path(kAgentSvidFile)), 0644);
  EXPECT_EQ(ModeOf(store.Path(kAgentKeyFile) + std::string(".next")), 0) << "staging file left behind";
  ASSERT_OK_AND_ASSIGN(spiffe::X509Svid loaded, store.LoadSvid());
  EXPECT_EQ(loaded.id, svid.id);
  ASSERT_EQ(loaded.chain.size(), 2u);  // leaf + intermediate
  EXPECT_EQ(loaded.chain.front().der(), svid.chain.front().der());
  EXPECT_EQ(loaded.key.public_key(), svid.key.public_key());
}

TEST(AgentState, DataDirCanBeLockedOnlyOnce) {
  TempDir tmp;
  AgentStateStore store(tmp.path(), Td());
  ASSERT_OK_AND_ASSIGN(auto lock, store.Lock());
  AgentStateStore other(tmp.path(), Td());
  EXPECT_STATUS(other.Lock(), absl::StatusCode::kFailedPrecondition, "is in use by another sigil-agent");
  lock.reset();
  EXPECT_TRUE(other.Lock().ok());
}

TEST(AgentState, NoStoredSvidIsNotFound) {
  TempDir tmp;
  AgentStateStore store(tmp.path(), Td());
  EXPECT_STATUS(store.LoadSvid(), absl::StatusCode::kNotFound, "no agent SVID stored");
  EXPECT_EQ(store.LoadBundle().status().code(), absl::StatusCode::kNotFound);
}

TEST(AgentState, CorruptSvidIsInvalidArgumentNamingTheFile) {
  TempDir tmp;
  AgentStateStore store(tmp.path(), Td());
  ASSERT_OK(WriteFileAtomic(store.Path(kAgentSvidFile), "garbage", 0644));
  ASSERT_OK(WriteFileAtomic(store.Path(kAgentKeyFile), "garbage", 0600));
  EXPECT_STATUS(store.LoadSvid(), absl::StatusCode::kInvalidArgument, store.Path(kAgentSvidFile));
}

TEST(AgentState, KeyOfAnotherSvidIsRefused) {
  TempDir tmp;
  AgentStateStore store(tmp.path(), Td());
  TestCa ca = TestCa::Root("example.org", absl::Now() - absl::Hours(1));
  ASSERT_OK(store.SaveSvid(MakeSvid(ca)));
  ASSERT_OK(WriteFileAtomic(store.Path(kAgentKeyFile), MakeSvid(ca).key.ToPkcs8Pem(), 0600));
  EXPECT_STATUS(store.LoadSvid(), absl::StatusCode::kInvalidArgument, "does not match");
}

TEST(AgentState, InterruptedReplacementIsCompletedOnLoad) {
  TempDir tmp;
  AgentStateStore store(tmp.path(), Td());
  TestCa ca = TestCa::Root("example.org", absl::Now() - absl::Hours(1));
  spiffe::X509Svid old_svid = MakeSvid(ca);
  spiffe::X509Svid new_svid = MakeSvid(ca);
  ASSERT_OK(store.SaveSvid(old_svid));
  // The state a crash leaves between the two renames: new key in place, new
  // certificate still staged.
  ASSERT_OK(WriteFileAtomic(store.Path(kAgentKeyFile), new_svid.key.ToPkcs8Pem(), 0600));
  ASSERT_OK(WriteFileAtomic(store.Path(kAgentSvidFile) + std::string(".next"), crypto::ToPem(new_svid.chain), 0644));
  ASSERT_OK_AND_ASSIGN(spiffe::X509Svid loaded, store.LoadSvid());
  EXPECT_EQ(loaded.chain.front().der(), new_svid.chain.front().der());
  EXPECT_EQ(ModeOf(store.Path(kAgentSvidFile) + std::string(".next")), 0);
  ASSERT_OK_AND_ASSIGN(spiffe::X509Svid again, store.LoadSvid());
  EXPECT_EQ(again.chain.front().der(), new_svid.chain.front().der());
}

TEST(AgentState, SvidOfAnotherTrustDomainIsRefused) {
  TempDir tmp;
  AgentStateStore store(tmp.path(), Td());
  TestCa ca = TestCa::Root("other.org", absl::Now() - absl::Hours(1));
  ASSERT_OK(store.SaveSvid(MakeSvid(ca, "spiffe://other.org/spire/agent/x")));
  EXPECT_STATUS(store.LoadSvid(), absl::StatusCode::kInvalidArgument, "is not of trust domain example.org");
}

TEST(AgentState, DeleteSvidKeepsTheBundle) {
  TempDir tmp;
  AgentStateStore store(tmp.path(), Td());
  TestCa ca = TestCa::Root("example.org", absl::Now() - absl::Hours(1));
  ASSERT_OK(store.SaveSvid(MakeSvid(ca)));
  spiffe::Bundle bundle(Td());
  bundle.AddX509Authority(ca.cert);
  ASSERT_OK(store.SaveBundle(bundle));
  ASSERT_OK(store.DeleteSvid());
  EXPECT_EQ(store.LoadSvid().status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ModeOf(store.Path(kAgentKeyFile)), 0);
  ASSERT_OK_AND_ASSIGN(spiffe::Bundle loaded, store.LoadBundle());
  EXPECT_EQ(loaded.x509_authorities().front().der(), ca.cert.der());
  EXPECT_EQ(ModeOf(store.Path(kBundleFile)), 0644);
  ASSERT_OK(store.DeleteSvid());
}

}  // namespace
}  // namespace sigil::agent
