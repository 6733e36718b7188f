#include "server/api/entry/service.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/api/api_test_util.h"

namespace sigil::server::api {
namespace {

namespace types = ::spire::api::types;
namespace v1 = ::spire::api::server::entry::v1;
using ::sigil::server::api::testing::ApiTest;
using ::sigil::server::api::testing::CheckAuthorization;
using ::sigil::server::api::testing::Rpc;
using ::sigil::server::testing::Id;
using ::sigil::server::testing::MakeEntry;
using ::sigil::testing::ExpectGrpcStatus;
using ::testing::ElementsAre;
using ::testing::SizeIs;

class EntryServiceTest : public ApiTest {
 protected:
  v1::BatchCreateEntryResponse CreateEntries(const std::vector<types::Entry>& entries,
                                             const types::EntryMask* mask = nullptr) {
    v1::BatchCreateEntryRequest req;
    for (const auto& e : entries) *req.add_entries() = e;
    if (mask != nullptr) *req.mutable_output_mask() = *mask;
    v1::BatchCreateEntryResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = entry_->BatchCreateEntry(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  std::string CreateOne(const types::Entry& e) {
    v1::BatchCreateEntryResponse resp = CreateEntries({e});
    EXPECT_EQ(resp.results(0).status().code(), 0) << resp.results(0).status().message();
    return resp.results(0).entry().id();
  }
};

TEST_F(EntryServiceTest, BatchCreateReportsEachItemInOrder) {
  types::Entry good = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"});
  types::Entry foreign = MakeEntry("/web", "/spire/agent/x", {"unix:uid:2"});
  *foreign.mutable_spiffe_id() = Id("other.org", "/web");
  types::Entry reserved = MakeEntry("/spire/server", "/spire/agent/x", {"unix:uid:3"});
  types::Entry similar = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"});
  types::Entry federated = MakeEntry("/fed", "/spire/agent/x", {"unix:uid:1"});
  federated.add_federates_with("unknown.org");
  v1::BatchCreateEntryResponse resp =
      CreateEntries({good, foreign, reserved, similar, federated});
  ASSERT_THAT(resp.results(), SizeIs(5));

  EXPECT_EQ(resp.results(0).status().code(), grpc::StatusCode::OK);
  EXPECT_EQ(resp.results(0).status().message(), "OK");
  const types::Entry& created = resp.results(0).entry();
  EXPECT_FALSE(created.id().empty());
  EXPECT_EQ(created.spiffe_id().path(), "/web");
  EXPECT_EQ(created.created_at(), absl::ToUnixSeconds(clock_.Now()));

  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(1).status().message(),
              ::testing::HasSubstr("invalid spiffe_id: \"spiffe://other.org/web\" is not a member"));
  EXPECT_FALSE(resp.results(1).has_entry());

  EXPECT_EQ(resp.results(2).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(2).status().message(), ::testing::HasSubstr("reserved namespace"));

  EXPECT_EQ(resp.results(3).status().code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(resp.results(3).status().message(), "similar entry already exists");
  EXPECT_EQ(resp.results(3).entry().id(), created.id());

  EXPECT_EQ(resp.results(4).status().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(resp.results(4).status().message(), ::testing::HasSubstr("\"unknown.org\""));
}

TEST_F(EntryServiceTest, BatchCreateHonoursOutputMask) {
  types::EntryMask mask;
  mask.set_spiffe_id(true);
  types::Entry e = MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"});
  e.set_hint("h");
  v1::BatchCreateEntryResponse resp = CreateEntries({e}, &mask);
  const types::Entry& out = resp.results(0).entry();
  EXPECT_FALSE(out.id().empty());
  EXPECT_EQ(out.spiffe_id().path(), "/web");
  EXPECT_FALSE(out.has_parent_id());
  EXPECT_THAT(out.selectors(), SizeIs(0));
  EXPECT_EQ(out.hint(), "");
  EXPECT_EQ(out.created_at(), 0);
}

TEST_F(EntryServiceTest, GetEntry) {
  std::string id = CreateOne(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"}));
  v1::GetEntryRequest req;
  types::Entry resp;
  {
    grpc::ClientContext ctx;
    ExpectGrpcStatus(entry_->GetEntry(&ctx, req, &resp), grpc::StatusCode::INVALID_ARGUMENT, "missing ID");
  }
  req.set_id("nope");
  {
    grpc::ClientContext ctx;
    ExpectGrpcStatus(entry_->GetEntry(&ctx, req, &resp), grpc::StatusCode::NOT_FOUND, "entry not found");
  }
  req.set_id(id);
  req.mutable_output_mask()->set_parent_id(true);
  grpc::ClientContext ctx;
  ASSERT_TRUE(entry_->GetEntry(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.id(), id);
  EXPECT_EQ(resp.parent_id().path(), "/spire/agent/x");
  EXPECT_FALSE(resp.has_spiffe_id());
}

TEST_F(EntryServiceTest, ListEntriesPaginatesAndFilters) {
  for (int i = 0; i < 5; ++i) {
    CreateOne(MakeEntry("/w" + std::to_string(i), i < 3 ? "/spire/agent/a" : "/spire/agent/b",
                        {"unix:uid:" + std::to_string(i)}));
  }
  v1::ListEntriesRequest req;
  req.set_page_size(2);
  std::vector<std::string> paths;
  int pages = 0;
  do {
    v1::ListEntriesResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(entry_->ListEntries(&ctx, req, &resp).ok());
    for (const auto& e : resp.entries()) paths.push_back(e.spiffe_id().path());
    req.set_page_token(resp.next_page_token());
    ++pages;
  } while (!req.page_token().empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(paths, SizeIs(5));

  v1::ListEntriesRequest filtered;
  *filtered.mutable_filter()->mutable_by_parent_id() = Id("example.org", "/spire/agent/b");
  v1::ListEntriesResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(entry_->ListEntries(&ctx, filtered, &resp).ok());
  EXPECT_THAT(resp.entries(), SizeIs(2));
  EXPECT_EQ(resp.next_page_token(), "");

  v1::CountEntriesRequest count;
  *count.mutable_filter()->mutable_by_parent_id() = Id("example.org", "/spire/agent/a");
  v1::CountEntriesResponse counted;
  grpc::ClientContext count_ctx;
  ASSERT_TRUE(entry_->CountEntries(&count_ctx, count, &counted).ok());
  EXPECT_EQ(counted.count(), 3);
}

TEST_F(EntryServiceTest, ListEntriesBySelectorsAndFederation) {
  StoreBundle("fed.org");
  types::Entry a = MakeEntry("/a", "/spire/agent/x", {"unix:uid:1", "unix:gid:1"});
  a.add_federates_with("spiffe://fed.org");
  CreateOne(a);
  CreateOne(MakeEntry("/b", "/spire/agent/x", {"unix:uid:1"}));
  v1::ListEntriesRequest req;
  auto* sel = req.mutable_filter()->mutable_by_selectors();
  sel->add_selectors()->set_type("unix");
  sel->mutable_selectors(0)->set_value("uid:1");
  sel->set_match(types::SelectorMatch::MATCH_EXACT);
  v1::ListEntriesResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(entry_->ListEntries(&ctx, req, &resp).ok());
  ASSERT_THAT(resp.entries(), SizeIs(1));
  EXPECT_EQ(resp.entries(0).spiffe_id().path(), "/b");

  v1::ListEntriesRequest fed;
  fed.mutable_filter()->mutable_by_federates_with()->add_trust_domains("spiffe://fed.org");
  fed.mutable_filter()->mutable_by_federates_with()->set_match(
      types::FederatesWithMatch::MATCH_ANY);
  v1::ListEntriesResponse fed_resp;
  grpc::ClientContext fed_ctx;
  ASSERT_TRUE(entry_->ListEntries(&fed_ctx, fed, &fed_resp).ok());
  ASSERT_THAT(fed_resp.entries(), SizeIs(1));
  EXPECT_EQ(fed_resp.entries(0).spiffe_id().path(), "/a");
  EXPECT_THAT(fed_resp.entries(0).federates_with(), ElementsAre("fed.org"));
}

TEST_F(EntryServiceTest, MalformedFiltersAreInvalidArgument) {
  struct Case {
    std::function<void(v1::ListEntriesRequest::Filter*)> set;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](auto* f) { *f->mutable_by_spiffe_id() = Id("example.org", "no-slash"); },
       "invalid filter by_spiffe_id: "},
      {[](auto* f) { *f->mutable_by_parent_id() = Id("", "/x"); }, "invalid filter by_parent_id: "},
      {[](auto* f) { f->mutable_by_selectors(); }, "invalid filter by_selectors: empty selector set"},
      {[](auto* f) { f->mutable_by_selectors()->add_selectors()->set_type("unix"); },
       "invalid filter by_selectors: missing selector value"},
      {[](auto* f) {
         auto* sel = f->mutable_by_selectors()->add_selectors();
         sel->set_type("unix");
         sel->set_value("uid:1");
         f->mutable_by_selectors()->set_match(static_cast<types::SelectorMatch::MatchBehavior>(9));
       },
       "invalid filter by_selectors: unknown match behavior 9"},
      {[](auto* f) { f->mutable_by_federates_with(); },
       "invalid filter by_federates_with: empty trust domain set"},
      {[](auto* f) { f->mutable_by_federates_with()->add_trust_domains("BAD TD"); },
       "invalid filter by_federates_with: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    v1::ListEntriesRequest req;
    c.set(req.mutable_filter());
    v1::ListEntriesResponse resp;
    grpc::ClientContext ctx;
    ExpectGrpcStatus(entry_->ListEntries(&ctx, req, &resp), grpc::StatusCode::INVALID_ARGUMENT, c.message);
  }
  v1::CountEntriesRequest count;
  count.mutable_filter()->mutable_by_selectors();
  v1::CountEntriesResponse counted;
  grpc::ClientContext ctx;
  ExpectGrpcStatus(entry_->CountEntries(&ctx, count, &counted), grpc::StatusCode::INVALID_ARGUMENT,
                   "empty selector set");
}

TEST_F(EntryServiceTest, BatchUpdateWithInputAndOutputMasks) {
  std::string id = CreateOne(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"}));
  v1::BatchUpdateEntryRequest req;
  types::Entry* change = req.add_entries();
  change->set_id(id);
  change->set_hint("new-hint");
  change->set_x509_svid_ttl(-1);  // not in the input mask: neither checked nor written
  req.mutable_input_mask()->set_hint(true);
  req.mutable_output_mask()->set_hint(true);
  req.mutable_output_mask()->set_revision_number(true);
  types::Entry* missing = req.add_entries();
  missing->set_id("ghost");
  req.add_entries();  // no id
  types::Entry* bad = req.add_entries();
  bad->set_id(id);
  bad->set_hint(std::string(1025, 'x'));
  v1::BatchUpdateEntryResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(entry_->BatchUpdateEntry(&ctx, req, &resp).ok());
  ASSERT_THAT(resp.results(), SizeIs(4));
  EXPECT_EQ(resp.results(0).status().code(), grpc::StatusCode::OK);
  EXPECT_EQ(resp.results(0).entry().hint(), "new-hint");
  EXPECT_EQ(resp.results(0).entry().revision_number(), 1);
  EXPECT_FALSE(resp.results(0).entry().has_spiffe_id());
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(resp.results(1).status().message(), "entry not found");
  EXPECT_EQ(resp.results(2).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(2).status().message(), "invalid id: missing");
  EXPECT_EQ(resp.results(3).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(3).status().message(), ::testing::HasSubstr("invalid hint: "));
  EXPECT_EQ(store_->GetEntry(id)->x509_svid_ttl(), 0);
}

TEST_F(EntryServiceTest, BatchUpdateWithoutMaskReplacesEverything) {
  std::string id = CreateOne(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"}));
  v1::BatchUpdateEntryRequest req;
  types::Entry* change = req.add_entries();
  *change = MakeEntry("/web2", "/spire/agent/y", {"unix:uid:2"});
  change->set_id(id);
  v1::BatchUpdateEntryResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(entry_->BatchUpdateEntry(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.results(0).status().code(), grpc::StatusCode::OK)
      << resp.results(0).status().message();
  EXPECT_EQ(resp.results(0).entry().spiffe_id().path(), "/web2");
  EXPECT_EQ(resp.results(0).entry().parent_id().path(), "/spire/agent/y");
  // Without a mask every field is validated, so a missing one is refused.
  v1::BatchUpdateEntryRequest partial;
  partial.add_entries()->set_id(id);
  v1::BatchUpdateEntryResponse partial_resp;
  grpc::ClientContext partial_ctx;
  ASSERT_TRUE(entry_->BatchUpdateEntry(&partial_ctx, partial, &partial_resp).ok());
  EXPECT_EQ(partial_resp.results(0).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(partial_resp.results(0).status().message(), "invalid spiffe_id: missing");
}

TEST_F(EntryServiceTest, BatchDelete) {
  std::string id = CreateOne(MakeEntry("/web", "/spire/agent/x", {"unix:uid:1"}));
  v1::BatchDeleteEntryRequest req;
  req.add_ids(id);
  req.add_ids(id);
  req.add_ids("");
  v1::BatchDeleteEntryResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(entry_->BatchDeleteEntry(&ctx, req, &resp).ok());
  ASSERT_THAT(resp.results(), SizeIs(3));
  EXPECT_EQ(resp.results(0).status().code(), grpc::StatusCode::OK);
  EXPECT_EQ(resp.results(0).id(), id);
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(resp.results(1).status().message(), "entry not found");
  EXPECT_EQ(resp.results(2).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(resp.results(2).status().message(), "missing entry ID");
  EXPECT_EQ(store_->CountEntries({}).value(), 0);
}

TEST_F(EntryServiceTest, EveryRpcIsForLocalOrAdminCallersOnly) {
  const uint32_t admin = kAllowLocal | kAllowAdmin;
  std::vector<Rpc> rpcs = {
      {"Entry.CountEntries",
       [&](grpc::ClientContext* ctx) {
         v1::CountEntriesResponse r;
         return entry_->CountEntries(ctx, {}, &r);
       },
       admin},
      {"Entry.ListEntries",
       [&](grpc::ClientContext* ctx) {
         v1::ListEntriesResponse r;
         return entry_->ListEntries(ctx, {}, &r);
       },
       admin},
      {"Entry.GetEntry",
       [&](grpc::ClientContext* ctx) {
         types::Entry r;
         v1::GetEntryRequest req;
         req.set_id("x");
         return entry_->GetEntry(ctx, req, &r);
       },
       admin},
      {"Entry.BatchCreateEntry",
       [&](grpc::ClientContext* ctx) {
         v1::BatchCreateEntryResponse r;
         return entry_->BatchCreateEntry(ctx, {}, &r);
       },
       admin},
      {"Entry.BatchUpdateEntry",
       [&](grpc::ClientContext* ctx) {
         v1::BatchUpdateEntryResponse r;
         return entry_->BatchUpdateEntry(ctx, {}, &r);
       },
       admin},
      {"Entry.BatchDeleteEntry",
       [&](grpc::ClientContext* ctx) {
         v1::BatchDeleteEntryResponse r;
         return entry_->BatchDeleteEntry(ctx, {}, &r);
       },
       admin},
  };
  CheckAuthorization(&authn_, rpcs);
}

TEST_F(EntryServiceTest, AuthenticationErrorsArePassedThrough) {
  authn_.SetError(absl::PermissionDeniedError("agent is banned"));
  v1::ListEntriesResponse r;
  grpc::ClientContext ctx;
  ExpectGrpcStatus(entry_->ListEntries(&ctx, {}, &r), grpc::StatusCode::PERMISSION_DENIED, "agent is banned");
}

TEST_F(EntryServiceTest, AgentSyncRpcsAreLeftToTheEntryIndex) {
  v1::GetAuthorizedEntriesResponse r;
  grpc::ClientContext ctx;
  EXPECT_EQ(entry_->GetAuthorizedEntries(&ctx, {}, &r).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace sigil::server::api
