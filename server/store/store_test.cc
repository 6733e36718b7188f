#include "server/store/store.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "ca/key_manager.h"
#include "ca/manager.h"
#include "server/datastore/memory_store.h"
#include "server/datastore/rocksdb_store.h"
#include "server/store/test_util.h"

namespace sigil::server {
namespace {

namespace types = ::spire::api::types;
using ::sigil::server::testing::Id;
using ::sigil::server::testing::MakeCaCert;
using ::sigil::server::testing::MakeEntry;
using ::sigil::server::testing::MakeJwtKey;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

std::vector<std::string> Ids(const std::vector<types::Entry>& entries) {
  std::vector<std::string> ids;
  for (const auto& e : entries) ids.push_back(e.id());
  return ids;
}

std::string WithNul(const std::string& a, const std::string& b) {
  return a + std::string(1, '\0') + b;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = datastore::MemoryStore::Create().value();
    store_ = std::make_unique<Store>(kv_.get(), &clock_);
  }

  types::Entry Create(const types::Entry& e) {
    absl::StatusOr<CreateEntryResult> r = store_->CreateEntry(e);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r.ok() && r->created);
    return r.ok() ? r->entry : types::Entry();
  }

  void StoreBundle(const std::string& td) {
    types::Bundle b;
    b.set_trust_domain(td);
    ASSERT_OK(store_->SetBundle(b));
  }

  // Every key in the datastore, for checking that nothing is left behind.
  std::vector<std::string> AllKeys() {
    std::vector<std::string> keys;
    datastore::RangeResult all = kv_->Range("", "", 0).value();
    for (const auto& kv : all.kvs) keys.push_back(kv.key);
    return keys;
  }

  FakeClock clock_;
  std::unique_ptr<datastore::MemoryStore> kv_;
  std::unique_ptr<Store> store_;
};

// ---- Entries ----

TEST_F(StoreTest, CreateEntryAssignsUuidCreationTimeAndRevisionZero) {
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1000"});
  e.set_revision_number(7);
  e.set_created_at(5);
  ASSERT_OK_AND_ASSIGN(CreateEntryResult r, store_->CreateEntry(e));
  EXPECT_TRUE(r.created);
  EXPECT_THAT(r.entry.id(), ::testing::MatchesRegex(
                                "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_EQ(r.entry.revision_number(), 0);
  EXPECT_EQ(r.entry.created_at(), absl::ToUnixSeconds(clock_.Now()));
  ASSERT_OK_AND_ASSIGN(types::Entry got, store_->GetEntry(r.entry.id()));
  EXPECT_EQ(got.SerializeAsString(), r.entry.SerializeAsString());
}

TEST_F(StoreTest, CreateEntryWritesEntryIndexesAndUniquenessKey) {
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1000"});
  e.set_id("web-1");
  e.add_federates_with("fed.org");
  StoreBundle("fed.org");
  Create(e);
  EXPECT_THAT(AllKeys(),
              UnorderedElementsAre(
                  "bundle/fed.org", "entry/web-1",
                  WithNul("entry_by_spiffe/spiffe://example.org/web", "web-1"),
                  WithNul("entry_by_parent/spiffe://example.org/spire/agent/x", "web-1"),
                  WithNul("entry_by_federates/fed.org", "web-1"), "federation_ref/fed.org",
                  store_keys::EntryUniqueKey(e)));
  EXPECT_EQ(kv_->Get(store_keys::EntryUniqueKey(e)).value().value, "web-1");
}

TEST_F(StoreTest, CreateEntryKeepsCallerChosenId) {
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1000"});
  e.set_id("my.entry_1-a");
  EXPECT_EQ(Create(e).id(), "my.entry_1-a");
}

TEST_F(StoreTest, CreateEntryRejectsMalformedId) {
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1000"});
  e.set_id("has space");
  EXPECT_STATUS(store_->CreateEntry(e), absl::StatusCode::kInvalidArgument, "id: entry ID contains");
  e.set_id(std::string(256, 'a'));
  EXPECT_STATUS(store_->CreateEntry(e), absl::StatusCode::kInvalidArgument,
                "id: entry ID is 256 characters; the limit is 255");
}

TEST_F(StoreTest, CreateEntryRejectsMissingIdsAndSelectors) {
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1000"});
  e.clear_spiffe_id();
  EXPECT_STATUS(store_->CreateEntry(e), absl::StatusCode::kInvalidArgument, "spiffe_id is missing");
  e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1000"});
  e.clear_parent_id();
  EXPECT_STATUS(store_->CreateEntry(e), absl::StatusCode::kInvalidArgument, "parent_id is missing");
  e = MakeEntry("/web", "/spire/agent/x", {});
  EXPECT_STATUS(store_->CreateEntry(e), absl::StatusCode::kInvalidArgument, "selectors: none given");
  e = MakeEntry("/web", "/spire/agent/x", {"un:ix:uid:1"});
  e.mutable_selectors(0)->set_type("un:ix");
  EXPECT_STATUS(store_->CreateEntry(e), absl::StatusCode::kInvalidArgument,
                "selectors[0]: selector type \"un:ix\" contains ':'");
  e = MakeEntry("/we b", "/spire/agent/x", {"unix:uid:1"});
  EXPECT_STATUS(store_->CreateEntry(e), absl::StatusCode::kInvalidArgument, "spiffe_id: ");
}

TEST_F(StoreTest, CreateSimilarEntryReturnsTheExistingOne) {
  types::Entry first = Create(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1", "unix:gid:2"}));
  // Same SPIFFE ID, parent and selector set: order and duplicates do not
  // matter, nor do other fields or a different caller-chosen ID.
  types::Entry again =
      MakeEntry("/web", "/spire/agent/x", {"unix:gid:2", "unix:uid:1", "unix:gid:2"});
  again.set_id("other");
  again.set_admin(true);
  ASSERT_OK_AND_ASSIGN(CreateEntryResult r, store_->CreateEntry(again));
  EXPECT_FALSE(r.created);
  EXPECT_EQ(r.entry.id(), first.id());
  EXPECT_FALSE(r.entry.admin());
  EXPECT_STATUS(store_->GetEntry("other"), absl::StatusCode::kNotFound, "entry \"other\" not found");
}

TEST_F(StoreTest, CreateEntryWithExistingIdIsAlreadyExists) {
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"});
  e.set_id("dup");
  Create(e);
  types::Entry other = MakeEntry("/db", "/spire/agent/x", {"unix:uid:2"});
  other.set_id("dup");
  EXPECT_STATUS(store_->CreateEntry(other), absl::StatusCode::kAlreadyExists,
                "an entry with id \"dup\" already exists");
}

TEST_F(StoreTest, CreateEntryFederatingWithUnknownBundleFailsPrecondition) {
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"});
  e.add_federates_with("fed.org");
  EXPECT_STATUS(store_->CreateEntry(e), absl::StatusCode::kFailedPrecondition,
                "no bundle is stored for trust domain \"fed.org\"");
  EXPECT_THAT(AllKeys(), IsEmpty());
}

TEST_F(StoreTest, CreateEntryNormalizesAndDeduplicatesFederatesWith) {
  StoreBundle("fed.org");
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"});
  e.add_federates_with("spiffe://fed.org");
  e.add_federates_with("fed.org");
  EXPECT_THAT(Create(e).federates_with(), ElementsAre("fed.org"));
  types::Entry bad = MakeEntry("/db", "/spire/agent/x", {"unix:uid:1"});
  bad.add_federates_with("spiffe://fed.org/path");
  EXPECT_STATUS(store_->CreateEntry(bad), absl::StatusCode::kInvalidArgument,
                "federates_with[0]: \"spiffe://fed.org/path\" is not a trust domain name");
}

TEST_F(StoreTest, ConcurrentCreatesOfOneEntryCreateItOnce) {
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<CreateEntryResult>> results(kThreads, absl::UnknownError("unset"));
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = store_->CreateEntry(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"}));
    });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    created += r->created ? 1 : 0;
    ids.insert(r->entry.id());
  }
  EXPECT_EQ(created, 1);
  EXPECT_THAT(ids, SizeIs(1));
  EXPECT_EQ(store_->CountEntries({}).value(), 1);
}

TEST_F(StoreTest, GetUnknownEntryIsNotFound) {
  EXPECT_STATUS(store_->GetEntry("nope"), absl::StatusCode::kNotFound, "entry \"nope\" not found");
  EXPECT_STATUS(store_->GetEntry(""), absl::StatusCode::kInvalidArgument, "entry id is empty");
}

TEST_F(StoreTest, UpdateEntryWithMaskChangesOnlyMaskedFieldsAndBumpsRevision) {
  types::Entry created = Create(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"}));
  clock_.Advance(absl::Hours(1));
  types::Entry change = MakeEntry("/other", "/spire/agent/y", {"unix:uid:9"});
  change.set_id(created.id());
  change.set_x509_svid_ttl(600);
  change.set_hint("h");
  change.set_created_at(1);
  change.set_revision_number(99);
  types::EntryMask mask;
  mask.set_x509_svid_ttl(true);
  mask.set_hint(true);
  ASSERT_OK_AND_ASSIGN(types::Entry updated, store_->UpdateEntry(change, &mask));
  EXPECT_EQ(updated.x509_svid_ttl(), 600);
  EXPECT_EQ(updated.hint(), "h");
  EXPECT_EQ(updated.spiffe_id().path(), "/web");
  EXPECT_EQ(updated.selectors(0).value(), "uid:1");
  EXPECT_EQ(updated.revision_number(), 1);
  EXPECT_EQ(updated.created_at(), created.created_at());
  EXPECT_EQ(store_->GetEntry(created.id()).value().SerializeAsString(),
            updated.SerializeAsString());
}

TEST_F(StoreTest, UpdateEntryMovesIndexesAndUniquenessKey) {
  types::Entry created = Create(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"}));
  types::Entry change = MakeEntry("/web2", "/spire/agent/y", {"unix:uid:2"});
  change.set_id(created.id());
  ASSERT_OK(store_->UpdateEntry(change, nullptr));
  EXPECT_THAT(store_->ListEntriesBySpiffeId("spiffe://example.org/web").value(), IsEmpty());
  EXPECT_THAT(store_->ListEntriesByParentId("spiffe://example.org/spire/agent/x").value(),
              IsEmpty());
  EXPECT_THAT(Ids(store_->ListEntriesBySpiffeId("spiffe://example.org/web2").value()),
              ElementsAre(created.id()));
  EXPECT_THAT(Ids(store_->ListEntriesByParentId("spiffe://example.org/spire/agent/y").value()),
              ElementsAre(created.id()));
  // The old combination is free again; the new one is taken.
  EXPECT_TRUE(store_->CreateEntry(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"}))->created);
  EXPECT_FALSE(store_->CreateEntry(MakeEntry("/web2", "/spire/agent/y", {"unix:uid:2"}))->created);
}

TEST_F(StoreTest, UpdateEntryIntoASimilarEntryIsAlreadyExists) {
  types::Entry a = Create(MakeEntry("/a", "/spire/agent/x", {"unix:uid:1"}));
  types::Entry b = Create(MakeEntry("/b", "/spire/agent/x", {"unix:uid:1"}));
  types::Entry change = b;
  *change.mutable_spiffe_id() = Id("example.org", "/a");
  EXPECT_STATUS(store_->UpdateEntry(change, nullptr), absl::StatusCode::kAlreadyExists,
                absl::StrCat("already exists: \"", a.id(), "\""));
  EXPECT_EQ(store_->GetEntry(b.id())->spiffe_id().path(), "/b");
}

TEST_F(StoreTest, UpdateUnknownEntryIsNotFound) {
  types::Entry e = MakeEntry("/a", "/spire/agent/x", {"unix:uid:1"});
  e.set_id("ghost");
  EXPECT_STATUS(store_->UpdateEntry(e, nullptr), absl::StatusCode::kNotFound,
                "entry \"ghost\" not found");
}

TEST_F(StoreTest, UpdateEntryAddingFederationNeedsTheBundle) {
  types::Entry created = Create(MakeEntry("/a", "/spire/agent/x", {"unix:uid:1"}));
  types::Entry change;
  change.set_id(created.id());
  change.add_federates_with("fed.org");
  types::EntryMask mask;
  mask.set_federates_with(true);
  EXPECT_STATUS(store_->UpdateEntry(change, &mask), absl::StatusCode::kFailedPrecondition,
                "trust domain \"fed.org\"");
  StoreBundle("fed.org");
  ASSERT_OK_AND_ASSIGN(types::Entry updated, store_->UpdateEntry(change, &mask));
  EXPECT_THAT(updated.federates_with(), ElementsAre("fed.org"));
  // Dropping it again removes the index key.
  change.clear_federates_with();
  ASSERT_OK(store_->UpdateEntry(change, &mask));
  EXPECT_TRUE(kv_->Range(store_keys::kEntryByFederatesPrefix, "", 0)->kvs.empty());
}

TEST_F(StoreTest, DeleteEntryReturnsItAndLeavesNoKeys) {
  StoreBundle("fed.org");
  types::Entry e = MakeEntry("/a", "/spire/agent/x", {"unix:uid:1"});
  e.add_federates_with("fed.org");
  types::Entry created = Create(e);
  ASSERT_OK_AND_ASSIGN(types::Entry deleted, store_->DeleteEntry(created.id()));
  EXPECT_EQ(deleted.SerializeAsString(), created.SerializeAsString());
  EXPECT_THAT(AllKeys(), UnorderedElementsAre("bundle/fed.org", "federation_ref/fed.org"));
  EXPECT_STATUS(store_->DeleteEntry(created.id()), absl::StatusCode::kNotFound, "not found");
}

TEST_F(StoreTest, ListEntriesPaginatesInIdOrder) {
  for (int i = 0; i < 7; ++i) {
    types::Entry e = MakeEntry(absl::StrCat("/w", i), "/spire/agent/x", {"unix:uid:1"});
    e.set_id(absl::StrCat("id", 6 - i));
    Create(e);
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(EntryPage page, store_->ListEntries({}, 3, token));
    EXPECT_LE(page.entries.size(), 3u);
    for (const auto& e : page.entries) seen.push_back(e.id());
    token = page.next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(seen, ElementsAre("id0", "id1", "id2", "id3", "id4", "id5", "id6"));
  ASSERT_OK_AND_ASSIGN(EntryPage all, store_->ListEntries({}, 0, ""));
  EXPECT_THAT(all.entries, SizeIs(7));
  EXPECT_EQ(all.next_page_token, "");
}

TEST_F(StoreTest, ListEntriesBySpiffeIdPaginatesThroughTheIndex) {
  for (int i = 0; i < 5; ++i) {
    types::Entry e = MakeEntry("/same", "/spire/agent/x", {absl::StrCat("unix:uid:", i)});
    e.set_id(absl::StrCat("e", i));
    Create(e);
  }
  Create(MakeEntry("/different", "/spire/agent/x", {"unix:uid:1"}));
  EntryFilter filter;
  filter.by_spiffe_id = "spiffe://example.org/same";
  ASSERT_OK_AND_ASSIGN(EntryPage p1, store_->ListEntries(filter, 2, ""));
  EXPECT_THAT(Ids(p1.entries), ElementsAre("e0", "e1"));
  ASSERT_OK_AND_ASSIGN(EntryPage p2, store_->ListEntries(filter, 2, p1.next_page_token));
  EXPECT_THAT(Ids(p2.entries), ElementsAre("e2", "e3"));
  ASSERT_OK_AND_ASSIGN(EntryPage p3, store_->ListEntries(filter, 2, p2.next_page_token));
  EXPECT_THAT(Ids(p3.entries), ElementsAre("e4"));
  EXPECT_EQ(p3.next_page_token, "");
}

class EntryFilterTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    StoreBundle("a.org");
    StoreBundle("b.org");
    Add("e1", "/one", "/spire/agent/x", {"unix:uid:1", "unix:gid:1"}, {"a.org"}, "", false);
    Add("e2", "/two", "/spire/agent/x", {"unix:uid:1"}, {"a.org", "b.org"}, "h", false);
    Add("e3", "/one", "/spire/agent/y", {"k8s:ns:x"}, {}, "h", true);
  }
  void Add(const std::string& id, const std::string& path, const std::string& parent,
           const std::vector<std::string>& selectors, const std::vector<std::string>& feds,
           const std::string& hint, bool downstream) {
    types::Entry e = MakeEntry(path, parent, selectors);
    e.set_id(id);
    for (const auto& f : feds) e.add_federates_with(f);
    e.set_hint(hint);
    e.set_downstream(downstream);
    Create(e);
  }
  std::vector<std::string> List(const EntryFilter& f) {
    absl::StatusOr<EntryPage> page = store_->ListEntries(f, 0, "");
    EXPECT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(store_->CountEntries(f).value(), static_cast<int64_t>(page->entries.size()));
    return page.ok() ? Ids(page->entries) : std::vector<std::string>{};
  }
  static types::SelectorMatch Selectors(std::vector<std::string> sels, int match) {
    types::SelectorMatch m;
    for (const auto& s : sels) {
      auto* sel = m.add_selectors();
      sel->set_type(s.substr(0, s.find(':')));
      sel->set_value(s.substr(s.find(':') + 1));
    }
    m.set_match(static_cast<types::SelectorMatch::MatchBehavior>(match));
    return m;
  }
  static types::FederatesWithMatch Feds(std::vector<std::string> tds, int match) {
    types::FederatesWithMatch m;
    for (const auto& td : tds) m.add_trust_domains(td);
    m.set_match(static_cast<types::FederatesWithMatch::MatchBehavior>(match));
    return m;
  }
};

TEST_F(EntryFilterTest, BySpiffeIdAndParentId) {
  EntryFilter f;
  f.by_spiffe_id = "spiffe://example.org/one";
  EXPECT_THAT(List(f), ElementsAre("e1", "e3"));
  f.by_parent_id = "spiffe://example.org/spire/agent/y";
  EXPECT_THAT(List(f), ElementsAre("e3"));
  EntryFilter p;
  p.by_parent_id = "spiffe://example.org/spire/agent/x";
  EXPECT_THAT(List(p), ElementsAre("e1", "e2"));
}

TEST_F(EntryFilterTest, BySelectorsEachMatchBehavior) {
  EntryFilter f;
  f.by_selectors = Selectors({"unix:uid:1"}, types::SelectorMatch::MATCH_EXACT);
  EXPECT_THAT(List(f), ElementsAre("e2"));
  f.by_selectors = Selectors({"unix:uid:1", "unix:gid:1"}, types::SelectorMatch::MATCH_SUBSET);
  EXPECT_THAT(List(f), ElementsAre("e1", "e2"));
  f.by_selectors = Selectors({"unix:uid:1"}, types::SelectorMatch::MATCH_SUPERSET);
  EXPECT_THAT(List(f), ElementsAre("e1", "e2"));
  f.by_selectors = Selectors({"unix:gid:1", "k8s:ns:x"}, types::SelectorMatch::MATCH_ANY);
  EXPECT_THAT(List(f), ElementsAre("e1", "e3"));
}

TEST_F(EntryFilterTest, ByFederatesWithEachMatchBehavior) {
  EntryFilter f;
  f.by_federates_with = Feds({"a.org"}, types::FederatesWithMatch::MATCH_EXACT);
  EXPECT_THAT(List(f), ElementsAre("e1"));
  f.by_federates_with = Feds({"a.org"}, types::FederatesWithMatch::MATCH_SUBSET);
  EXPECT_THAT(List(f), ElementsAre("e1"));
  f.by_federates_with = Feds({"a.org"}, types::FederatesWithMatch::MATCH_SUPERSET);
  EXPECT_THAT(List(f), ElementsAre("e1", "e2"));
  f.by_federates_with = Feds({"b.org", "c.org"}, types::FederatesWithMatch::MATCH_ANY);
  EXPECT_THAT(List(f), ElementsAre("e2"));
}

TEST_F(EntryFilterTest, ByHintAndDownstream) {
  EntryFilter f;
  f.by_hint = "h";
  EXPECT_THAT(List(f), ElementsAre("e2", "e3"));
  f.by_downstream = false;
  EXPECT_THAT(List(f), ElementsAre("e2"));
}

// ---- Agents ----

AgentRecord MakeAgent(const std::string& path, const std::string& type = "join_token") {
  AgentRecord r;
  *r.mutable_agent()->mutable_id() = Id("example.org", path);
  r.mutable_agent()->set_attestation_type(type);
  r.mutable_agent()->set_x509svid_serial_number("1");
  return r;
}

TEST_F(StoreTest, PutAndGetAgent) {
  AgentRecord r = MakeAgent("/spire/agent/join_token/t1");
  r.set_new_x509svid_serial_number("2");
  ASSERT_OK_AND_ASSIGN(int64_t rev, store_->PutAgent(r, 0));
  ASSERT_OK_AND_ASSIGN(StoredAgent got,
                       store_->GetAgent("spiffe://example.org/spire/agent/join_token/t1"));
  EXPECT_EQ(got.mod_revision, rev);
  EXPECT_EQ(got.record.SerializeAsString(), r.SerializeAsString());
}

TEST_F(StoreTest, PutAgentComparesRevision) {
  AgentRecord r = MakeAgent("/spire/agent/a");
  ASSERT_OK_AND_ASSIGN(int64_t rev, store_->PutAgent(r, 0));
  EXPECT_STATUS(store_->PutAgent(r, 0), absl::StatusCode::kAlreadyExists,
                "agent \"spiffe://example.org/spire/agent/a\" already exists");
  ASSERT_OK_AND_ASSIGN(int64_t rev2, store_->PutAgent(r, rev));
  EXPECT_STATUS(store_->PutAgent(r, rev), absl::StatusCode::kAborted, "changed since revision");
  EXPECT_OK(store_->PutAgent(r, std::nullopt));
  EXPECT_GT(rev2, rev);
}

TEST_F(StoreTest, AgentIdMustBeASpiffeId) {
  AgentRecord r;
  EXPECT_STATUS(store_->PutAgent(r, std::nullopt), absl::StatusCode::kInvalidArgument,
                "agent id is missing");
  EXPECT_STATUS(store_->GetAgent("not an id"), absl::StatusCode::kInvalidArgument, "agent id: ");
}

TEST_F(StoreTest, ModifyAgentRetriesAndKeepsTheId) {
  ASSERT_OK(store_->PutAgent(MakeAgent("/spire/agent/a"), 0));
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(StoredAgent modified,
                       store_->ModifyAgent("spiffe://example.org/spire/agent/a",
                                           [&](AgentRecord* r) {
                                             // A concurrent writer on the first call.
                                             if (calls++ == 0) {
                                               EXPECT_OK(store_->PutAgent(
                                                   MakeAgent("/spire/agent/a", "x"), std::nullopt));
                                             }
                                             r->set_new_x509svid_serial_number("5");
                                             return absl::OkStatus();
                                           }));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(modified.record.agent().attestation_type(), "x");
  EXPECT_EQ(modified.record.new_x509svid_serial_number(), "5");
  EXPECT_STATUS(store_->ModifyAgent("spiffe://example.org/spire/agent/a",
                                    [](AgentRecord* r) {
                                      r->mutable_agent()->mutable_id()->set_path("/spire/agent/b");
                                      return absl::OkStatus();
                                    }),
                absl::StatusCode::kInvalidArgument, "cannot change");
}

TEST_F(StoreTest, DeleteAgentEvicts) {
  ASSERT_OK(store_->PutAgent(MakeAgent("/spire/agent/a"), 0));
  ASSERT_OK_AND_ASSIGN(AgentRecord deleted,
                       store_->DeleteAgent("spiffe://example.org/spire/agent/a"));
  EXPECT_EQ(deleted.agent().id().path(), "/spire/agent/a");
  EXPECT_STATUS(store_->DeleteAgent("spiffe://example.org/spire/agent/a"),
                absl::StatusCode::kNotFound, "not found");
  // Evicted agents may come back.
  EXPECT_OK(store_->PutAgent(MakeAgent("/spire/agent/a"), 0));
}

TEST_F(StoreTest, BanAgentSetsBannedAndClearsSerials) {
  AgentRecord r = MakeAgent("/spire/agent/a");
  r.set_new_x509svid_serial_number("2");
  ASSERT_OK(store_->PutAgent(r, 0));
  ASSERT_OK(store_->BanAgent("spiffe://example.org/spire/agent/a"));
  ASSERT_OK_AND_ASSIGN(StoredAgent got, store_->GetAgent("spiffe://example.org/spire/agent/a"));
  EXPECT_TRUE(got.record.agent().banned());
  EXPECT_EQ(got.record.agent().x509svid_serial_number(), "");
  EXPECT_EQ(got.record.new_x509svid_serial_number(), "");
  EXPECT_STATUS(store_->BanAgent("spiffe://example.org/spire/agent/b"),
                absl::StatusCode::kNotFound, "not found");
}

TEST_F(StoreTest, ListAgentsFiltersAndPaginates) {
  AgentRecord a = MakeAgent("/spire/agent/a", "join_token");
  a.mutable_agent()->set_x509svid_expires_at(100);
  auto* sel = a.mutable_agent()->add_selectors();
  sel->set_type("aws");
  sel->set_value("region:x");
  AgentRecord b = MakeAgent("/spire/agent/b", "x509pop");
  b.mutable_agent()->set_can_reattest(true);
  b.mutable_agent()->set_x509svid_expires_at(300);
  AgentRecord c = MakeAgent("/spire/agent/c", "join_token");
  c.mutable_agent()->set_x509svid_expires_at(200);
  for (const auto& r : {a, b, c}) ASSERT_OK(store_->PutAgent(r, 0));
  ASSERT_OK(store_->BanAgent("spiffe://example.org/spire/agent/c"));

  auto list = [&](const AgentFilter& f) {
    std::vector<std::string> paths;
    AgentPage page = store_->ListAgents(f, 0, "").value();
    for (const auto& r : page.agents) {
      paths.push_back(r.agent().id().path());
    }
    EXPECT_EQ(store_->CountAgents(f).value(), static_cast<int64_t>(paths.size()));
    return paths;
  };
  AgentFilter f;
  EXPECT_THAT(list(f), ElementsAre("/spire/agent/a", "/spire/agent/b", "/spire/agent/c"));
  f.by_attestation_type = "join_token";
  EXPECT_THAT(list(f), ElementsAre("/spire/agent/a", "/spire/agent/c"));
  f.by_banned = false;
  EXPECT_THAT(list(f), ElementsAre("/spire/agent/a"));
  AgentFilter r;
  r.by_can_reattest = true;
  EXPECT_THAT(list(r), ElementsAre("/spire/agent/b"));
  AgentFilter s;
  types::SelectorMatch m;
  *m.add_selectors() = a.agent().selectors(0);
  m.set_match(types::SelectorMatch::MATCH_SUPERSET);
  s.by_selector_match = m;
  EXPECT_THAT(list(s), ElementsAre("/spire/agent/a"));
  AgentFilter e;
  e.by_expires_before = absl::FromUnixSeconds(250);
  EXPECT_THAT(list(e), ElementsAre("/spire/agent/a", "/spire/agent/c"));

  ASSERT_OK_AND_ASSIGN(AgentPage p1, store_->ListAgents({}, 2, ""));
  EXPECT_THAT(p1.agents, SizeIs(2));
  EXPECT_EQ(p1.next_page_token, "spiffe://example.org/spire/agent/b");
  ASSERT_OK_AND_ASSIGN(AgentPage p2, store_->ListAgents({}, 2, p1.next_page_token));
  ASSERT_THAT(p2.agents, SizeIs(1));
  EXPECT_EQ(p2.agents[0].agent().id().path(), "/spire/agent/c");
  EXPECT_EQ(p2.next_page_token, "");
}

// ---- Join tokens ----

JoinTokenRecord Token(const std::string& value, absl::Time expires) {
  JoinTokenRecord t;
  t.set_token(value);
  t.set_expires_at(absl::ToUnixSeconds(expires));
  return t;
}

TEST_F(StoreTest, JoinTokenIsConsumedOnce) {
  ASSERT_OK(store_->CreateJoinToken(Token("t1", clock_.Now() + absl::Minutes(5))));
  ASSERT_OK_AND_ASSIGN(JoinTokenRecord used, store_->ConsumeJoinToken("t1"));
  EXPECT_EQ(used.token(), "t1");
  EXPECT_STATUS(store_->ConsumeJoinToken("t1"), absl::StatusCode::kNotFound,
                "join token not found");
}

TEST_F(StoreTest, DuplicateJoinTokenIsAlreadyExists) {
  ASSERT_OK(store_->CreateJoinToken(Token("t1", clock_.Now() + absl::Minutes(5))));
  EXPECT_STATUS(store_->CreateJoinToken(Token("t1", clock_.Now() + absl::Minutes(5))),
                absl::StatusCode::kAlreadyExists, "join token already exists");
  EXPECT_STATUS(store_->CreateJoinToken(Token("", clock_.Now())),
                absl::StatusCode::kInvalidArgument, "join token is empty");
}

TEST_F(StoreTest, ExpiredJoinTokenIsRefusedAndDeleted) {
  ASSERT_OK(store_->CreateJoinToken(Token("t1", clock_.Now() + absl::Minutes(5))));
  clock_.Advance(absl::Minutes(5));
  EXPECT_STATUS(store_->ConsumeJoinToken("t1"), absl::StatusCode::kPermissionDenied,
                "join token expired");
  EXPECT_STATUS(store_->ConsumeJoinToken("t1"), absl::StatusCode::kNotFound, "not found");
}

TEST_F(StoreTest, ConcurrentConsumersUseATokenOnce) {
  ASSERT_OK(store_->CreateJoinToken(Token("t1", clock_.Now() + absl::Minutes(5))));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (store_->ConsumeJoinToken("t1").ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
}

TEST_F(StoreTest, PruneJoinTokensDeletesOnlyExpired) {
  ASSERT_OK(store_->CreateJoinToken(Token("old", clock_.Now() + absl::Minutes(1))));
  ASSERT_OK(store_->CreateJoinToken(Token("new", clock_.Now() + absl::Minutes(10))));
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(store_->PruneJoinTokens().value(), 1);
  EXPECT_THAT(AllKeys(), ElementsAre("token/new"));
}

TEST_F(StoreTest, JoinTokenWithAliasEntryIsAtomic) {
  types::Entry alias = MakeEntry("/node", "/spire/agent/join_token/t1",
                                 {"spiffe_id:spiffe://example.org/spire/agent/join_token/t1"});
  ASSERT_OK_AND_ASSIGN(types::Entry created, store_->CreateJoinTokenWithEntry(
                                                 Token("t1", clock_.Now() + absl::Hours(1)), alias));
  EXPECT_EQ(store_->GetEntry(created.id())->parent_id().path(), "/spire/agent/join_token/t1");
  // The token exists now, so neither the token nor a second entry is made.
  types::Entry other = MakeEntry("/node2", "/spire/agent/join_token/t1", {"a:b"});
  EXPECT_STATUS(store_->CreateJoinTokenWithEntry(Token("t1", clock_.Now() + absl::Hours(1)), other),
                absl::StatusCode::kAlreadyExists, "join token already exists");
  EXPECT_EQ(store_->CountEntries({}).value(), 1);
}

// ---- Bundles ----

types::Bundle MakeBundle(const std::string& td) {
  types::Bundle b;
  b.set_trust_domain(td);
  return b;
}

TEST_F(StoreTest, BundleCreateGetUpdateSet) {
  types::Bundle b = MakeBundle("fed.org");
  *b.add_jwt_authorities() = MakeJwtKey("k1");
  b.set_refresh_hint(60);
  ASSERT_OK(store_->CreateBundle(b));
  EXPECT_STATUS(store_->CreateBundle(b), absl::StatusCode::kAlreadyExists,
                "a bundle for trust domain \"fed.org\" already exists");
  ASSERT_OK_AND_ASSIGN(types::Bundle got, store_->GetBundle("fed.org"));
  EXPECT_EQ(got.SerializeAsString(), b.SerializeAsString());

  types::Bundle change = MakeBundle("fed.org");
  change.set_refresh_hint(30);
  types::BundleMask mask;
  mask.set_refresh_hint(true);
  ASSERT_OK_AND_ASSIGN(types::Bundle updated, store_->UpdateBundle(change, &mask));
  EXPECT_EQ(updated.refresh_hint(), 30);
  EXPECT_THAT(updated.jwt_authorities(), SizeIs(1));
  EXPECT_STATUS(store_->UpdateBundle(MakeBundle("other.org"), nullptr), absl::StatusCode::kNotFound,
                "no bundle is stored for trust domain \"other.org\"");

  ASSERT_OK(store_->SetBundle(MakeBundle("spiffe://fed.org")));
  EXPECT_THAT(store_->GetBundle("fed.org")->jwt_authorities(), IsEmpty());
  EXPECT_STATUS(store_->GetBundle("Bad!"), absl::StatusCode::kInvalidArgument, "trust domain");
}

TEST_F(StoreTest, AppendBundleMergesAndBumpsSequenceOnlyOnChange) {
  types::Bundle add = MakeBundle("example.org");
  add.add_x509_authorities()->set_asn1(
      MakeCaCert(clock_.Now() - absl::Hours(1), clock_.Now() + absl::Hours(1)).der());
  *add.add_jwt_authorities() = MakeJwtKey("k1");
  EXPECT_STATUS(store_->AppendBundle(add, false), absl::StatusCode::kNotFound, "no bundle");
  ASSERT_OK_AND_ASSIGN(types::Bundle first, store_->AppendBundle(add, true));
  EXPECT_EQ(first.sequence_number(), 1u);
  EXPECT_THAT(first.x509_authorities(), SizeIs(1));
  ASSERT_OK_AND_ASSIGN(types::Bundle again, store_->AppendBundle(add, false));
  EXPECT_EQ(again.sequence_number(), 1u);
  types::Bundle more = MakeBundle("example.org");
  *more.add_jwt_authorities() = MakeJwtKey("k2");
  ASSERT_OK_AND_ASSIGN(types::Bundle merged, store_->AppendBundle(more, false));
  EXPECT_EQ(merged.sequence_number(), 2u);
  EXPECT_THAT(merged.jwt_authorities(), SizeIs(2));
  types::Bundle conflict = MakeBundle("example.org");
  *conflict.add_jwt_authorities() = MakeJwtKey("k1");
  EXPECT_STATUS(store_->AppendBundle(conflict, false), absl::StatusCode::kInvalidArgument,
                "key ID \"k1\" is already used by a different key");
}

TEST_F(StoreTest, DeleteBundleRestrictRefusesWhileEntriesFederate) {
  StoreBundle("fed.org");
  types::Entry e = MakeEntry("/a", "/spire/agent/x", {"unix:uid:1"});
  e.add_federates_with("fed.org");
  Create(e);
  EXPECT_STATUS(store_->DeleteBundle("fed.org", BundleDeleteMode::kRestrict),
                absl::StatusCode::kFailedPrecondition,
                "cannot delete bundle; federated with 1 registration entries");
  EXPECT_OK(store_->GetBundle("fed.org"));
}

TEST_F(StoreTest, DeleteBundleDissociateRemovesTheTrustDomainFromEntries) {
  StoreBundle("fed.org");
  StoreBundle("keep.org");
  types::Entry e = MakeEntry("/a", "/spire/agent/x", {"unix:uid:1"});
  e.add_federates_with("fed.org");
  e.add_federates_with("keep.org");
  types::Entry created = Create(e);
  ASSERT_OK(store_->DeleteBundle("fed.org", BundleDeleteMode::kDissociate));
  ASSERT_OK_AND_ASSIGN(types::Entry after, store_->GetEntry(created.id()));
  EXPECT_THAT(after.federates_with(), ElementsAre("keep.org"));
  EXPECT_EQ(after.revision_number(), 1);
  EXPECT_STATUS(store_->GetBundle("fed.org"), absl::StatusCode::kNotFound, "no bundle");
  EXPECT_THAT(kv_->Range(std::string("entry_by_federates/fed.org"), "", 0)->kvs, IsEmpty());
}

TEST_F(StoreTest, DeleteBundleDeleteModeDeletesFederatedEntries) {
  StoreBundle("fed.org");
  // More entries than fit in one transaction batch.
  for (int i = 0; i < 40; ++i) {
    types::Entry e = MakeEntry(absl::StrCat("/w", i), "/spire/agent/x", {"unix:uid:1"});
    e.add_federates_with("fed.org");
    Create(e);
  }
  types::Entry unrelated = Create(MakeEntry("/u", "/spire/agent/x", {"unix:uid:1"}));
  ASSERT_OK(store_->DeleteBundle("fed.org", BundleDeleteMode::kDelete));
  EXPECT_EQ(store_->CountEntries({}).value(), 1);
  EXPECT_OK(store_->GetEntry(unrelated.id()));
  EXPECT_STATUS(store_->DeleteBundle("fed.org", BundleDeleteMode::kDelete),
                absl::StatusCode::kNotFound, "no bundle");
  // Only the unrelated entry's keys remain.
  EXPECT_THAT(AllKeys(), SizeIs(4));
}

// Forwards to another KvStore and runs a hook before each Commit, so a test
// can slip a concurrent writer in between a read and the write built on it.
class CommitHookStore final : public datastore::KvStore {
 public:
  explicit CommitHookStore(datastore::KvStore* inner) : inner_(inner) {}
  void set_before_commit(std::function<void()> hook) { before_commit_ = std::move(hook); }

  absl::StatusOr<datastore::KeyValue> Get(absl::string_view key) override {
    return inner_->Get(key);
  }
  absl::StatusOr<datastore::RangeResult> Range(absl::string_view prefix,
                                               absl::string_view start_after,
                                               int64_t limit) override {
    return inner_->Range(prefix, start_after, limit);
  }
  absl::StatusOr<int64_t> Commit(const datastore::Txn& txn) override {
    if (before_commit_) {
      std::function<void()> hook = std::move(before_commit_);
      before_commit_ = nullptr;
      hook();
    }
    return inner_->Commit(txn);
  }
  absl::StatusOr<int64_t> CurrentRevision() override { return inner_->CurrentRevision(); }
  absl::StatusOr<std::unique_ptr<datastore::WatchHandle>> Watch(
      absl::string_view prefix, int64_t from_revision, datastore::WatchCallback callback) override {
    return inner_->Watch(prefix, from_revision, std::move(callback));
  }
  absl::Status Close() override { return inner_->Close(); }

 private:
  datastore::KvStore* const inner_;
  std::function<void()> before_commit_;
};

TEST_F(StoreTest, DeleteBundleNoticesAnEntryFederatingConcurrently) {
  StoreBundle("fed.org");
  CommitHookStore hooked(kv_.get());
  Store racing(&hooked, &clock_);
  // Between DeleteBundle's reads (no federated entries yet) and its delete,
  // another writer creates an entry federating with the bundle.
  hooked.set_before_commit([&] {
    types::Entry e = MakeEntry("/a", "/spire/agent/x", {"unix:uid:1"});
    e.add_federates_with("fed.org");
    Create(e);
  });
  EXPECT_STATUS(racing.DeleteBundle("fed.org", BundleDeleteMode::kRestrict),
                absl::StatusCode::kFailedPrecondition, "federated with 1 registration entries");
  EXPECT_OK(store_->GetBundle("fed.org"));
}

TEST_F(StoreTest, CreateEntryNoticesItsBundleDeletedConcurrently) {
  StoreBundle("fed.org");
  CommitHookStore hooked(kv_.get());
  Store racing(&hooked, &clock_);
  hooked.set_before_commit(
      [&] { EXPECT_OK(store_->DeleteBundle("fed.org", BundleDeleteMode::kRestrict)); });
  types::Entry e = MakeEntry("/a", "/spire/agent/x", {"unix:uid:1"});
  e.add_federates_with("fed.org");
  EXPECT_STATUS(racing.CreateEntry(e), absl::StatusCode::kFailedPrecondition,
                "no bundle is stored for trust domain \"fed.org\"");
  EXPECT_EQ(store_->CountEntries({}).value(), 0);
}

TEST_F(StoreTest, ListAndCountBundles) {
  for (const char* td : {"c.org", "a.org", "b.org"}) StoreBundle(td);
  EXPECT_EQ(store_->CountBundles().value(), 3);
  ASSERT_OK_AND_ASSIGN(BundlePage p1, store_->ListBundles(2, ""));
  ASSERT_THAT(p1.bundles, SizeIs(2));
  EXPECT_EQ(p1.bundles[0].trust_domain(), "a.org");
  EXPECT_EQ(p1.next_page_token, "b.org");
  ASSERT_OK_AND_ASSIGN(BundlePage p2, store_->ListBundles(2, p1.next_page_token));
  ASSERT_THAT(p2.bundles, SizeIs(1));
  EXPECT_EQ(p2.bundles[0].trust_domain(), "c.org");
  EXPECT_EQ(p2.next_page_token, "");
}

// ---- CA journal and local bundle publisher ----

TEST_F(StoreTest, JournalRoundTrips) {
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> none, store_->LoadJournal());
  EXPECT_FALSE(none.has_value());
  ASSERT_OK(store_->SaveJournal(std::string("j\0ournal", 8)));
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> saved, store_->LoadJournal());
  EXPECT_EQ(saved, std::string("j\0ournal", 8));
}

class PublisherTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    publisher_ = std::make_unique<LocalBundlePublisher>(
        store_.get(), spiffe::TrustDomain::FromString("example.org").value());
  }
  ca::PublishedJwtAuthority Jwt(const std::string& kid, absl::Time expires, bool tainted = false) {
    crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    return ca::PublishedJwtAuthority{spiffe::JwtAuthority{kid, key.public_key(), expires}, tainted};
  }
  types::Bundle Bundle() { return store_->GetBundle("example.org").value(); }
  std::unique_ptr<LocalBundlePublisher> publisher_;
};

TEST_F(PublisherTest, PublishAddsAuthoritiesOnceAndBumpsSequence) {
  crypto::Certificate ca = MakeCaCert(clock_.Now() - absl::Hours(1), clock_.Now() + absl::Hours(24));
  ca::PublishedJwtAuthority jwt = Jwt("kid1", clock_.Now() + absl::Hours(24));
  ASSERT_OK(publisher_->PublishLocalAuthorities({{ca, false}}, {jwt}));
  types::Bundle b = Bundle();
  EXPECT_EQ(b.sequence_number(), 1u);
  ASSERT_THAT(b.x509_authorities(), SizeIs(1));
  EXPECT_EQ(b.x509_authorities(0).asn1(), ca.der());
  ASSERT_THAT(b.jwt_authorities(), SizeIs(1));
  EXPECT_EQ(b.jwt_authorities(0).key_id(), "kid1");
  EXPECT_EQ(b.jwt_authorities(0).public_key(), jwt.authority.public_key.spki_der());
  EXPECT_EQ(b.jwt_authorities(0).expires_at(), absl::ToUnixSeconds(clock_.Now() + absl::Hours(24)));

  ASSERT_OK(publisher_->PublishLocalAuthorities({{ca, false}}, {jwt}));
  EXPECT_EQ(Bundle().sequence_number(), 1u);

  jwt.tainted = true;
  ASSERT_OK(publisher_->PublishLocalAuthorities({{ca, true}}, {jwt}));
  b = Bundle();
  EXPECT_EQ(b.sequence_number(), 2u);
  EXPECT_TRUE(b.x509_authorities(0).tainted());
  EXPECT_TRUE(b.jwt_authorities(0).tainted());
}

TEST_F(PublisherTest, PublishLeavesOtherAuthoritiesAlone) {
  types::Bundle appended = MakeBundle("example.org");
  crypto::Certificate op = MakeCaCert(clock_.Now() - absl::Hours(1), clock_.Now() + absl::Hours(48));
  appended.add_x509_authorities()->set_asn1(op.der());
  ASSERT_OK(store_->AppendBundle(appended, true));
  crypto::Certificate ca = MakeCaCert(clock_.Now() - absl::Hours(1), clock_.Now() + absl::Hours(24));
  ASSERT_OK(publisher_->PublishLocalAuthorities({{ca, false}}, {}));
  EXPECT_THAT(Bundle().x509_authorities(), SizeIs(2));
}

TEST_F(PublisherTest, RemoveAuthorities) {
  crypto::Certificate ca = MakeCaCert(clock_.Now() - absl::Hours(1), clock_.Now() + absl::Hours(24));
  ASSERT_OK(publisher_->PublishLocalAuthorities({{ca, false}},
                                                {Jwt("kid1", clock_.Now() + absl::Hours(1))}));
  ASSERT_OK(publisher_->RemoveX509Authority(ca));
  ASSERT_OK(publisher_->RemoveJwtAuthority("kid1"));
  ASSERT_OK(publisher_->RemoveJwtAuthority("absent"));
  types::Bundle b = Bundle();
  EXPECT_THAT(b.x509_authorities(), IsEmpty());
  EXPECT_THAT(b.jwt_authorities(), IsEmpty());
  EXPECT_EQ(b.sequence_number(), 3u);
}

TEST_F(PublisherTest, ExpiredAuthoritiesArePrunedOnWrite) {
  crypto::Certificate short_ca =
      MakeCaCert(clock_.Now() - absl::Hours(1), clock_.Now() + absl::Hours(1));
  crypto::Certificate long_ca =
      MakeCaCert(clock_.Now() - absl::Hours(1), clock_.Now() + absl::Hours(48));
  ASSERT_OK(publisher_->PublishLocalAuthorities(
      {{short_ca, false}, {long_ca, false}},
      {Jwt("short", clock_.Now() + absl::Hours(1)), Jwt("long", clock_.Now() + absl::Hours(48)),
       Jwt("forever", absl::InfinitePast())}));
  clock_.Advance(absl::Hours(2));
  // Publishing nothing new still prunes.
  ASSERT_OK(publisher_->PublishLocalAuthorities({}, {}));
  types::Bundle b = Bundle();
  ASSERT_THAT(b.x509_authorities(), SizeIs(1));
  EXPECT_EQ(b.x509_authorities(0).asn1(), long_ca.der());
  std::vector<std::string> kids;
  for (const auto& k : b.jwt_authorities()) kids.push_back(k.key_id());
  EXPECT_THAT(kids, ElementsAre("long", "forever"));
  EXPECT_EQ(b.sequence_number(), 2u);
}

TEST_F(PublisherTest, RefreshHintComesFromTheSetter) {
  publisher_->set_refresh_hint(absl::Minutes(5));
  ASSERT_OK(publisher_->PublishLocalAuthorities({}, {Jwt("k", clock_.Now() + absl::Hours(1))}));
  EXPECT_EQ(Bundle().refresh_hint(), 300);
}

TEST_F(PublisherTest, DifferentKeyUnderAPublishedKeyIdIsRefused) {
  ASSERT_OK(publisher_->PublishLocalAuthorities({}, {Jwt("k", clock_.Now() + absl::Hours(1))}));
  EXPECT_STATUS(publisher_->PublishLocalAuthorities({}, {Jwt("k", clock_.Now() + absl::Hours(1))}),
                absl::StatusCode::kFailedPrecondition, "different key under JWT key ID \"k\"");
}

// The CA manager keeps its journal and publishes its authorities through
// the store: the stored bundle always equals the CA's own view.
TEST_F(PublisherTest, CaManagerJournalsAndPublishesThroughTheStore) {
  ca::MemoryKeyManager keys;
  ca::CaOptions options{spiffe::TrustDomain::FromString("example.org").value()};
  auto same_authorities = [&](const ca::CaManager& manager) {
    spiffe::Bundle local = manager.LocalBundle();
    types::Bundle stored = Bundle();
    std::set<std::string> want_x509, got_x509, want_jwt, got_jwt;
    for (const auto& c : local.x509_authorities()) want_x509.insert(c.der());
    for (const auto& c : stored.x509_authorities()) got_x509.insert(c.asn1());
    for (const auto& k : local.jwt_authorities()) want_jwt.insert(k.key_id);
    for (const auto& k : stored.jwt_authorities()) got_jwt.insert(k.key_id());
    EXPECT_FALSE(want_x509.empty());
    EXPECT_FALSE(want_jwt.empty());
    EXPECT_EQ(got_x509, want_x509);
    EXPECT_EQ(got_jwt, want_jwt);
  };
  {
    ASSERT_OK_AND_ASSIGN(auto manager, ca::CaManager::Create(options, &keys, nullptr, store_.get(),
                                                             publisher_.get(), &clock_));
    same_authorities(*manager);
    ASSERT_OK_AND_ASSIGN(std::optional<std::string> journal, store_->LoadJournal());
    EXPECT_TRUE(journal.has_value());
    const uint64_t before = Bundle().sequence_number();
    // Past half the CA lifetime a successor is prepared and published.
    clock_.Advance(absl::Hours(13));
    ASSERT_OK(manager->Rotate());
    same_authorities(*manager);
    EXPECT_GT(Bundle().sequence_number(), before);
  }
  // A restart over the same store resumes from the journal.
  const std::string bundle_before = Bundle().SerializeAsString();
  ASSERT_OK_AND_ASSIGN(auto restarted, ca::CaManager::Create(options, &keys, nullptr, store_.get(),
                                                             publisher_.get(), &clock_));
  same_authorities(*restarted);
  EXPECT_EQ(Bundle().SerializeAsString(), bundle_before);
}

// ---- RocksDB engine ----

TEST(StoreRocksDb, EntriesSurviveReopening) {
  std::string dir = ::sigil::server::testing::MakeTempDir("store-test");
  FakeClock clock;
  std::string id;
  {
    ASSERT_OK_AND_ASSIGN(auto kv, datastore::RocksDbStore::Open(dir + "/db"));
    Store store(kv.get(), &clock);
    ASSERT_OK_AND_ASSIGN(CreateEntryResult r,
                         store.CreateEntry(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"})));
    id = r.entry.id();
    ASSERT_OK(store.CreateJoinToken(Token("t", clock.Now() + absl::Hours(1))));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto kv, datastore::RocksDbStore::Open(dir + "/db"));
    Store store(kv.get(), &clock);
    ASSERT_OK_AND_ASSIGN(types::Entry got, store.GetEntry(id));
    EXPECT_EQ(got.spiffe_id().path(), "/web");
    EXPECT_THAT(Ids(store.ListEntriesBySpiffeId("spiffe://example.org/web").value()),
                ElementsAre(id));
    EXPECT_OK(store.ConsumeJoinToken("t"));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sigil::server
