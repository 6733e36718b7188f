#include "server/api/agent/service.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/api/api_test_util.h"

namespace sigil::server::api {
namespace {

namespace types = ::spire::api::types;
namespace v1 = ::spire::api::server::agent::v1;
using ::sigil::server::api::testing::ApiTest;
using ::sigil::server::api::testing::CheckAuthorization;
using ::sigil::server::api::testing::Rpc;
using ::sigil::server::testing::Id;
using ::sigil::testing::ExpectGrpcStatus;
using ::testing::ElementsAre;
using ::testing::SizeIs;

class AgentServiceTest : public ApiTest {
 protected:
  void AddAgent(const std::string& path, const std::string& type, bool banned = false,
                int64_t expires_at = 0) {
    AgentRecord r;
    *r.mutable_agent()->mutable_id() = Id("example.org", path);
    r.mutable_agent()->set_attestation_type(type);
    r.mutable_agent()->set_x509svid_serial_number("42");
    r.mutable_agent()->set_x509svid_expires_at(expires_at);
    r.mutable_agent()->set_banned(banned);
    auto* sel = r.mutable_agent()->add_selectors();
    sel->set_type(type);
    sel->set_value("node");
    ASSERT_TRUE(store_->PutAgent(r, 0).ok());
  }
  std::vector<std::string> List(const v1::ListAgentsRequest& req, std::string* token = nullptr) {
    v1::ListAgentsResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = agent_->ListAgents(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> paths;
    for (const auto& a : resp.agents()) paths.push_back(a.id().path());
    if (token != nullptr) *token = resp.next_page_token();
    return paths;
  }
  grpc::Status CreateToken(const v1::CreateJoinTokenRequest& req, types::JoinToken* out) {
    grpc::ClientContext ctx;
    return agent_->CreateJoinToken(&ctx, req, out);
  }
};

TEST_F(AgentServiceTest, GetAgentWithMask) {
  AddAgent("/spire/agent/join_token/a", "join_token");
  v1::GetAgentRequest req;
  *req.mutable_id() = Id("example.org", "/spire/agent/join_token/a");
  req.mutable_output_mask()->set_attestation_type(true);
  types::Agent resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(agent_->GetAgent(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.id().path(), "/spire/agent/join_token/a");
  EXPECT_EQ(resp.attestation_type(), "join_token");
  EXPECT_EQ(resp.x509svid_serial_number(), "");
  EXPECT_THAT(resp.selectors(), SizeIs(0));
}

TEST_F(AgentServiceTest, GetAgentRefusesNonAgentIdsAndReportsUnknown) {
  struct Case {
    types::SPIFFEID id;
    bool set;
    std::string message;
  };
  std::vector<Case> cases = {
      {{}, false, "invalid id: missing"},
      {Id("example.org", "/workload"), true, "is not an agent ID"},
      {Id("other.org", "/spire/agent/x"), true, "is not a member of trust domain \"example.org\""},
      {Id("example.org", "/spire/agent//x"), true, "invalid id: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    v1::GetAgentRequest req;
    if (c.set) *req.mutable_id() = c.id;
    types::Agent resp;
    grpc::ClientContext ctx;
    ExpectGrpcStatus(agent_->GetAgent(&ctx, req, &resp), grpc::StatusCode::INVALID_ARGUMENT,
                     c.message);
  }
  v1::GetAgentRequest req;
  *req.mutable_id() = Id("example.org", "/spire/agent/none");
  types::Agent resp;
  grpc::ClientContext ctx;
  ExpectGrpcStatus(agent_->GetAgent(&ctx, req, &resp), grpc::StatusCode::NOT_FOUND,
                   "agent not found");
}

TEST_F(AgentServiceTest, ListAndCountAgentsWithFilters) {
  AddAgent("/spire/agent/a", "join_token", false, 100);
  AddAgent("/spire/agent/b", "x509pop", false, 300);
  AddAgent("/spire/agent/c", "join_token", true, 200);

  v1::ListAgentsRequest req;
  EXPECT_THAT(List(req), ElementsAre("/spire/agent/a", "/spire/agent/b", "/spire/agent/c"));
  req.mutable_filter()->set_by_attestation_type("join_token");
  req.mutable_filter()->mutable_by_banned()->set_value(false);
  EXPECT_THAT(List(req), ElementsAre("/spire/agent/a"));

  v1::ListAgentsRequest by_selector;
  auto* sel = by_selector.mutable_filter()->mutable_by_selector_match();
  auto* s = sel->add_selectors();
  s->set_type("x509pop");
  s->set_value("node");
  sel->set_match(types::SelectorMatch::MATCH_EXACT);
  EXPECT_THAT(List(by_selector), ElementsAre("/spire/agent/b"));

  v1::ListAgentsRequest by_expiry;
  by_expiry.mutable_filter()->set_by_expires_before("1970-01-01T00:04:10Z");
  EXPECT_THAT(List(by_expiry), ElementsAre("/spire/agent/a", "/spire/agent/c"));
  by_expiry.mutable_filter()->set_by_expires_before("1970-01-01 00:02:30 +0000 UTC");
  EXPECT_THAT(List(by_expiry), ElementsAre("/spire/agent/a"));

  v1::ListAgentsRequest paged;
  paged.set_page_size(2);
  std::string token;
  EXPECT_THAT(List(paged, &token), ElementsAre("/spire/agent/a", "/spire/agent/b"));
  paged.set_page_token(token);
  EXPECT_THAT(List(paged, &token), ElementsAre("/spire/agent/c"));
  EXPECT_EQ(token, "");

  v1::CountAgentsRequest count;
  count.mutable_filter()->mutable_by_banned()->set_value(true);
  v1::CountAgentsResponse counted;
  grpc::ClientContext ctx;
  ASSERT_TRUE(agent_->CountAgents(&ctx, count, &counted).ok());
  EXPECT_EQ(counted.count(), 1);
}

TEST_F(AgentServiceTest, MalformedAgentFiltersAreInvalidArgument) {
  v1::ListAgentsRequest req;
  req.mutable_filter()->set_by_expires_before("yesterday");
  v1::ListAgentsResponse resp;
  grpc::ClientContext ctx;
  ExpectGrpcStatus(agent_->ListAgents(&ctx, req, &resp), grpc::StatusCode::INVALID_ARGUMENT,
                   "invalid filter by_expires_before: \"yesterday\"");
  v1::CountAgentsRequest count;
  count.mutable_filter()->mutable_by_selector_match();
  v1::CountAgentsResponse counted;
  grpc::ClientContext count_ctx;
  ExpectGrpcStatus(agent_->CountAgents(&count_ctx, count, &counted),
                   grpc::StatusCode::INVALID_ARGUMENT,
                   "invalid filter by_selector_match: empty selector set");
}

TEST_F(AgentServiceTest, ExpiresBeforeAcceptsGoAndRfc3339Forms) {
  EXPECT_EQ(ParseExpiresBefore("2026-01-02T03:04:05Z").value(), absl::FromUnixSeconds(1767323045));
  EXPECT_EQ(ParseExpiresBefore("2026-01-02 04:04:05 +0100 CET").value(),
            absl::FromUnixSeconds(1767323045));
  EXPECT_EQ(ParseExpiresBefore("2026-01-02 03:04:05.5 +0000 +00").value(),
            absl::FromUnixSeconds(1767323045) + absl::Milliseconds(500));
  EXPECT_FALSE(ParseExpiresBefore("2026-01-02").ok());
}

TEST_F(AgentServiceTest, DeleteAgentEvicts) {
  AddAgent("/spire/agent/a", "join_token");
  v1::DeleteAgentRequest req;
  *req.mutable_id() = Id("example.org", "/spire/agent/a");
  google::protobuf::Empty empty;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(agent_->DeleteAgent(&ctx, req, &empty).ok());
  }
  EXPECT_EQ(store_->GetAgent("spiffe://example.org/spire/agent/a").status().code(),
            absl::StatusCode::kNotFound);
  grpc::ClientContext ctx;
  ExpectGrpcStatus(agent_->DeleteAgent(&ctx, req, &empty), grpc::StatusCode::NOT_FOUND,
                   "agent not found");
  v1::DeleteAgentRequest bad;
  *bad.mutable_id() = Id("example.org", "/workload");
  grpc::ClientContext bad_ctx;
  ExpectGrpcStatus(agent_->DeleteAgent(&bad_ctx, bad, &empty), grpc::StatusCode::INVALID_ARGUMENT,
                   "is not an agent ID");
}

TEST_F(AgentServiceTest, BanAgent) {
  AddAgent("/spire/agent/a", "join_token");
  v1::BanAgentRequest req;
  *req.mutable_id() = Id("example.org", "/spire/agent/a");
  google::protobuf::Empty empty;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(agent_->BanAgent(&ctx, req, &empty).ok());
  }
  StoredAgent banned = store_->GetAgent("spiffe://example.org/spire/agent/a").value();
  EXPECT_TRUE(banned.record.agent().banned());
  EXPECT_EQ(banned.record.agent().x509svid_serial_number(), "");
  *req.mutable_id() = Id("example.org", "/spire/agent/unknown");
  grpc::ClientContext ctx;
  ExpectGrpcStatus(agent_->BanAgent(&ctx, req, &empty), grpc::StatusCode::NOT_FOUND,
                   "agent not found");
}

TEST_F(AgentServiceTest, CreateJoinTokenRequiresTtl) {
  types::JoinToken token;
  ExpectGrpcStatus(CreateToken({}, &token), grpc::StatusCode::INVALID_ARGUMENT, "ttl is required");
  v1::CreateJoinTokenRequest negative;
  negative.set_ttl(-5);
  ExpectGrpcStatus(CreateToken(negative, &token), grpc::StatusCode::INVALID_ARGUMENT,
                   "ttl is required");
}

TEST_F(AgentServiceTest, CreateJoinTokenGeneratesAUuidThatAttestsOnce) {
  v1::CreateJoinTokenRequest req;
  req.set_ttl(600);
  types::JoinToken token;
  ASSERT_TRUE(CreateToken(req, &token).ok());
  EXPECT_THAT(token.value(), ::testing::MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                                                     "[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_EQ(token.expires_at(), absl::ToUnixSeconds(clock_.Now()) + 600);
  ASSERT_TRUE(store_->ConsumeJoinToken(token.value()).ok());
  EXPECT_EQ(store_->ConsumeJoinToken(token.value()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AgentServiceTest, CreateJoinTokenWithChosenValue) {
  v1::CreateJoinTokenRequest req;
  req.set_ttl(60);
  req.set_token("my-token");
  types::JoinToken token;
  ASSERT_TRUE(CreateToken(req, &token).ok());
  EXPECT_EQ(token.value(), "my-token");
  ExpectGrpcStatus(CreateToken(req, &token), grpc::StatusCode::ALREADY_EXISTS,
                   "join token already exists");
  req.set_token("a/b");
  ExpectGrpcStatus(CreateToken(req, &token), grpc::StatusCode::INVALID_ARGUMENT, "invalid token: ");
  req.set_token("..");
  ExpectGrpcStatus(CreateToken(req, &token), grpc::StatusCode::INVALID_ARGUMENT, "invalid token: ");
}

TEST_F(AgentServiceTest, CreateJoinTokenWithAgentIdCreatesTheNodeAlias) {
  v1::CreateJoinTokenRequest req;
  req.set_ttl(60);
  req.set_token("tok");
  *req.mutable_agent_id() = Id("example.org", "/nodes/web");
  types::JoinToken token;
  ASSERT_TRUE(CreateToken(req, &token).ok());
  std::vector<types::Entry> aliases =
      store_->ListEntriesByParentId("spiffe://example.org/spire/agent/join_token/tok").value();
  ASSERT_THAT(aliases, SizeIs(1));
  EXPECT_EQ(aliases[0].spiffe_id().path(), "/nodes/web");
  ASSERT_THAT(aliases[0].selectors(), SizeIs(1));
  EXPECT_EQ(aliases[0].selectors(0).type(), "spiffe_id");
  EXPECT_EQ(aliases[0].selectors(0).value(), "spiffe://example.org/spire/agent/join_token/tok");
}

TEST_F(AgentServiceTest, CreateJoinTokenRefusesBadAgentIds) {
  struct Case {
    types::SPIFFEID id;
    std::string message;
  };
  std::vector<Case> cases = {
      {Id("other.org", "/node"), "invalid agent_id: \"spiffe://other.org/node\" is not a member"},
      {Id("example.org", ""), "invalid agent_id: \"spiffe://example.org\" has an empty path"},
      {Id("example.org", "/spire/agent/x"), "invalid agent_id: "},
      {Id("example.org", "bad"), "invalid agent_id: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    v1::CreateJoinTokenRequest req;
    req.set_ttl(60);
    *req.mutable_agent_id() = c.id;
    types::JoinToken token;
    ExpectGrpcStatus(CreateToken(req, &token), grpc::StatusCode::INVALID_ARGUMENT, c.message);
  }
  // Nothing was created by the refused requests.
  EXPECT_EQ(kv_->Range("token/", "", 0)->kvs.size(), 0u);
  EXPECT_EQ(store_->CountEntries({}).value(), 0);
}

TEST_F(AgentServiceTest, AdministrationRpcsAreForLocalOrAdminCallersOnly) {
  const uint32_t admin = kAllowLocal | kAllowAdmin;
  types::SPIFFEID id = Id("example.org", "/spire/agent/x");
  std::vector<Rpc> rpcs = {
      {"Agent.CountAgents",
       [&](grpc::ClientContext* ctx) {
         v1::CountAgentsResponse r;
         return agent_->CountAgents(ctx, {}, &r);
       },
       admin},
      {"Agent.ListAgents",
       [&](grpc::ClientContext* ctx) {
         v1::ListAgentsResponse r;
         return agent_->ListAgents(ctx, {}, &r);
       },
       admin},
      {"Agent.GetAgent",
       [&](grpc::ClientContext* ctx) {
         v1::GetAgentRequest req;
         *req.mutable_id() = id;
         types::Agent r;
         return agent_->GetAgent(ctx, req, &r);
       },
       admin},
      {"Agent.DeleteAgent",
       [&](grpc::ClientContext* ctx) {
         v1::DeleteAgentRequest req;
         *req.mutable_id() = id;
         google::protobuf::Empty r;
         return agent_->DeleteAgent(ctx, req, &r);
       },
       admin},
      {"Agent.BanAgent",
       [&](grpc::ClientContext* ctx) {
         v1::BanAgentRequest req;
         *req.mutable_id() = id;
         google::protobuf::Empty r;
         return agent_->BanAgent(ctx, req, &r);
       },
       admin},
      {"Agent.CreateJoinToken",
       [&](grpc::ClientContext* ctx) {
         v1::CreateJoinTokenRequest req;
         req.set_ttl(60);
         types::JoinToken r;
         return agent_->CreateJoinToken(ctx, req, &r);
       },
       admin},
  };
  CheckAuthorization(&authn_, rpcs);
}

TEST_F(AgentServiceTest, AttestationRpcsAreLeftToAgentAttest) {
  v1::RenewAgentResponse r;
  grpc::ClientContext ctx;
  EXPECT_EQ(agent_->RenewAgent(&ctx, {}, &r).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace sigil::server::api
