#include "server/entry_index.h"

#include <algorithm>
#include <atomic>

#include "gtest/gtest.h"
#include "server/datastore/memory_store.h"
#include "server/store/store.h"

namespace sigil::server {
namespace {

using spire::api::types::Entry;

class EntryIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = datastore::MemoryStore::Create().value();
    store_ = std::make_unique<Store>(kv_.get(), &clock_);
  }

  static spire::api::types::SPIFFEID Id(const std::string& path) {
    spire::api::types::SPIFFEID id;
    id.set_trust_domain("example.org");
    id.set_path(path);
    return id;
  }

  std::string AddEntry(const std::string& spiffe_path, const std::string& parent_path,
                       std::vector<std::pair<std::string, std::string>> selectors = {{"unix", "uid:1000"}}) {
    Entry e;
    *e.mutable_spiffe_id() = Id(spiffe_path);
    *e.mutable_parent_id() = Id(parent_path);
    for (auto& [t, v] : selectors) {
      auto* s = e.add_selectors();
      s->set_type(t);
      s->set_value(v);
    }
    auto r = store_->CreateEntry(e);
    EXPECT_TRUE(r.ok()) << r.status();
    return r->entry.id();
  }

  void AddAgent(const std::string& path, std::vector<std::pair<std::string, std::string>> selectors) {
    AgentRecord rec;
    *rec.mutable_agent()->mutable_id() = Id(path);
    rec.mutable_agent()->set_attestation_type("test");
    for (auto& [t, v] : selectors) {
      auto* s = rec.mutable_agent()->add_selectors();
      s->set_type(t);
      s->set_value(v);
    }
    ASSERT_TRUE(store_->PutAgent(rec, std::nullopt).ok());
  }

  std::vector<std::string> Authorized(EntryIndex& index, const std::string& agent_path) {
    auto agent = spiffe::SpiffeId::FromString("spiffe://example.org" + agent_path).value();
    std::vector<std::string> paths;
    for (const auto& e : index.AuthorizedEntries(agent)) paths.push_back(e->spiffe_id().path());
    std::sort(paths.begin(), paths.end());
    return paths;
  }

  void Sync(EntryIndex& index) {
    ASSERT_TRUE(index.WaitForRevision(kv_->CurrentRevision().value(), absl::Seconds(10)));
  }

  FakeClock clock_;
  std::unique_ptr<datastore::MemoryStore> kv_;
  std::unique_ptr<Store> store_;
  spiffe::TrustDomain td_ = spiffe::TrustDomain::FromString("example.org").value();
};

TEST_F(EntryIndexTest, DirectChildrenAndDescendantsAreAuthorized) {
  AddEntry("/workload/a", "/spire/agent/x/1");
  AddEntry("/workload/a/child", "/workload/a");
  AddEntry("/workload/other", "/spire/agent/x/2");
  auto index = EntryIndex::Create(kv_.get(), td_).value();
  EXPECT_EQ(Authorized(*index, "/spire/agent/x/1"),
            (std::vector<std::string>{"/workload/a", "/workload/a/child"}));
  EXPECT_EQ(Authorized(*index, "/spire/agent/x/2"), (std::vector<std::string>{"/workload/other"}));
  EXPECT_TRUE(Authorized(*index, "/spire/agent/x/3").empty());
}

TEST_F(EntryIndexTest, NodeAliasesMatchBySelectorSubset) {
  AddAgent("/spire/agent/x/1", {{"x509pop", "subject:cn:node1"}, {"x509pop", "ca:fp:abc"}});
  AddAgent("/spire/agent/x/2", {{"x509pop", "subject:cn:node2"}});
  AddEntry("/cluster/prod", "/spire/server", {{"x509pop", "ca:fp:abc"}});
  AddEntry("/workload/web", "/cluster/prod");
  auto index = EntryIndex::Create(kv_.get(), td_).value();
  EXPECT_EQ(Authorized(*index, "/spire/agent/x/1"), (std::vector<std::string>{"/cluster/prod", "/workload/web"}));
  EXPECT_TRUE(Authorized(*index, "/spire/agent/x/2").empty());
}

TEST_F(EntryIndexTest, CyclesTerminate) {
  AddEntry("/a", "/spire/agent/x/1");
  AddEntry("/b", "/a");
  AddEntry("/a", "/b");
  auto index = EntryIndex::Create(kv_.get(), td_).value();
  EXPECT_EQ(Authorized(*index, "/spire/agent/x/1"), (std::vector<std::string>{"/a", "/a", "/b"}));
}

TEST_F(EntryIndexTest, ChangesArriveThroughTheFeedAndNotifySubscribers) {
  auto index = EntryIndex::Create(kv_.get(), td_).value();
  std::atomic<int> notifications{0};
  auto sub = index->Subscribe([&](int64_t) { notifications++; });
  std::string id = AddEntry("/workload/a", "/spire/agent/x/1");
  Sync(*index);
  EXPECT_EQ(Authorized(*index, "/spire/agent/x/1"), (std::vector<std::string>{"/workload/a"}));
  EXPECT_GE(notifications.load(), 1);
  ASSERT_NE(index->GetEntry(id), nullptr);
  ASSERT_TRUE(store_->DeleteEntry(id).ok());
  Sync(*index);
  EXPECT_TRUE(Authorized(*index, "/spire/agent/x/1").empty());
  EXPECT_EQ(index->GetEntry(id), nullptr);
  EXPECT_EQ(index->entry_count(), 0u);
}

TEST_F(EntryIndexTest, AgentSelectorChangesMoveAliasMembership) {
  AddEntry("/cluster/prod", "/spire/server", {{"k", "v"}});
  AddEntry("/workload/web", "/cluster/prod");
  auto index = EntryIndex::Create(kv_.get(), td_).value();
  EXPECT_TRUE(Authorized(*index, "/spire/agent/x/1").empty());
  AddAgent("/spire/agent/x/1", {{"k", "v"}});
  Sync(*index);
  EXPECT_EQ(Authorized(*index, "/spire/agent/x/1").size(), 2u);
  ASSERT_TRUE(store_->DeleteAgent("spiffe://example.org/spire/agent/x/1").ok());
  Sync(*index);
  EXPECT_TRUE(Authorized(*index, "/spire/agent/x/1").empty());
}

TEST_F(EntryIndexTest, EntriesBySpiffeId) {
  AddEntry("/admin", "/spire/agent/x/1");
  AddEntry("/admin", "/spire/agent/x/2");
  auto index = EntryIndex::Create(kv_.get(), td_).value();
  EXPECT_EQ(index->EntriesBySpiffeId("spiffe://example.org/admin").size(), 2u);
  EXPECT_TRUE(index->EntriesBySpiffeId("spiffe://example.org/nobody").empty());
}

}  // namespace
}  // namespace sigil::server
