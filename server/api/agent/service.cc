#include "server/api/agent/service.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "apitypes/convert.h"
#include "server/store/entry_validation.h"

namespace sigil::server::api {
namespace {

namespace types = ::spire::api::types;
namespace v1 = ::spire::api::server::agent::v1;

constexpr uint32_t kAdmin = kAllowLocal | kAllowAdmin;

absl::Status FilterError(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("invalid filter ", field, ": ", reason));
}

// CountAgentsRequest.Filter and ListAgentsRequest.Filter have the same
// fields but are distinct message types.
template <typename Filter>
absl::StatusOr<AgentFilter> ToStoreFilter(const Filter& in) {
  AgentFilter out;
  out.by_attestation_type = in.by_attestation_type();
  if (in.has_by_selector_match()) {
    if (in.by_selector_match().selectors().empty()) {
      return FilterError("by_selector_match", "empty selector set");
    }
    if (!types::SelectorMatch::MatchBehavior_IsValid(in.by_selector_match().match())) {
      return FilterError("by_selector_match",
                         absl::StrCat("unknown match behavior ", in.by_selector_match().match()));
    }
    for (const types::Selector& s : in.by_selector_match().selectors()) {
      absl::Status valid = ValidateSelector(s);
      if (!valid.ok()) return FilterError("by_selector_match", valid.message());
    }
    out.by_selector_match = in.by_selector_match();
  }
  if (in.has_by_banned()) out.by_banned = in.by_banned().value();
  if (in.has_by_can_reattest()) out.by_can_reattest = in.by_can_reattest().value();
  if (!in.by_expires_before().empty()) {
    absl::StatusOr<absl::Time> t = ParseExpiresBefore(in.by_expires_before());
    if (!t.ok()) return FilterError("by_expires_before", t.status().message());
    out.by_expires_before = *t;
  }
  return out;
}

// A join token becomes a path segment of the agent's SPIFFE ID
// (spiffe://<td>/spire/agent/join_token/<token>), so it must be one.
absl::Status ValidateToken(absl::string_view token) {
  if (absl::StrContains(token, '/')) {
    return absl::InvalidArgumentError("invalid token: contains '/'");
  }
  absl::Status s = spiffe::ValidatePath(absl::StrCat("/", token));
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("invalid token: ", s.message()));
  return absl::OkStatus();
}

}  // namespace

types::Agent ApplyAgentMask(const types::Agent& agent, const types::AgentMask* mask) {
  if (mask == nullptr) return agent;
  types::Agent out;
  *out.mutable_id() = agent.id();
  if (mask->attestation_type()) out.set_attestation_type(agent.attestation_type());
  if (mask->x509svid_serial_number()) {
    out.set_x509svid_serial_number(agent.x509svid_serial_number());
  }
  if (mask->x509svid_expires_at()) out.set_x509svid_expires_at(agent.x509svid_expires_at());
  if (mask->selectors()) *out.mutable_selectors() = agent.selectors();
  if (mask->banned()) out.set_banned(agent.banned());
  if (mask->can_reattest()) out.set_can_reattest(agent.can_reattest());
  return out;
}

absl::StatusOr<absl::Time> ParseExpiresBefore(absl::string_view text) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  // Go's Time.String(): "<date> <time> <offset> <zone abbreviation>"; the
  // abbreviation adds nothing to the offset.
  std::vector<absl::string_view> parts = absl::StrSplit(text, ' ');
  absl::string_view without_zone = text;
  if (parts.size() == 4) without_zone = text.substr(0, text.size() - parts[3].size() - 1);
  if (absl::ParseTime("%Y-%m-%d %H:%M:%E*S %z", without_zone, &t, &err)) return t;
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", text,
      "\" is neither RFC 3339 nor \"YYYY-MM-DD HH:MM:SS +hhmm [zone]\" (", err, ")"));
}

AgentService::AgentService(Store* store, Authenticator* authn, const Clock* clock,
                           spiffe::TrustDomain td)
    : store_(store), authn_(authn), clock_(clock), td_(std::move(td)) {}

absl::StatusOr<spiffe::SpiffeId> AgentService::AgentIdFromProto(const types::SPIFFEID& id,
                                                                bool present,
                                                                absl::string_view field) const {
  auto error = [field](absl::string_view reason) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", field, ": ", reason));
  };
  if (!present) return error("missing");
  absl::StatusOr<spiffe::SpiffeId> parsed = apitypes::SpiffeIdFromProto(id);
  if (!parsed.ok()) return error(parsed.status().message());
  if (!parsed->MemberOf(td_)) {
    return error(absl::StrCat("\"", parsed->ToString(), "\" is not a member of trust domain \"",
                              td_.name(), "\""));
  }
  if (!IsAgentPath(parsed->path())) {
    return error(absl::StrCat("\"", parsed->ToString(),
                              "\" is not an agent ID (path not under /spire/agent/)"));
  }
  return parsed;
}

grpc::Status AgentService::CountAgents(grpc::ServerContext* ctx, const v1::CountAgentsRequest* req,
                                       v1::CountAgentsResponse* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Agent.CountAgents");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<AgentFilter> filter = ToStoreFilter(req->filter());
  if (!filter.ok()) return ToGrpc(filter.status());
  absl::StatusOr<int64_t> count = store_->CountAgents(*filter);
  if (!count.ok()) return ToGrpc(count.status());
  resp->set_count(static_cast<int32_t>(*count));
  return grpc::Status::OK;
}

grpc::Status AgentService::ListAgents(grpc::ServerContext* ctx, const v1::ListAgentsRequest* req,
                                      v1::ListAgentsResponse* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Agent.ListAgents");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<AgentFilter> filter = ToStoreFilter(req->filter());
  if (!filter.ok()) return ToGrpc(filter.status());
  absl::StatusOr<AgentPage> page = store_->ListAgents(*filter, req->page_size(), req->page_token());
  if (!page.ok()) return ToGrpc(page.status());
  const types::AgentMask* mask = req->has_output_mask() ? &req->output_mask() : nullptr;
  for (const AgentRecord& r : page->agents) *resp->add_agents() = ApplyAgentMask(r.agent(), mask);
  resp->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status AgentService::GetAgent(grpc::ServerContext* ctx, const v1::GetAgentRequest* req,
                                    types::Agent* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Agent.GetAgent");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<spiffe::SpiffeId> id = AgentIdFromProto(req->id(), req->has_id(), "id");
  if (!id.ok()) return ToGrpc(id.status());
  absl::StatusOr<StoredAgent> agent = store_->GetAgent(id->ToString());
  if (agent.status().code() == absl::StatusCode::kNotFound) {
    return ToGrpc(absl::NotFoundError("agent not found"));
  }
  if (!agent.ok()) return ToGrpc(agent.status());
  *resp = ApplyAgentMask(agent->record.agent(),
                         req->has_output_mask() ? &req->output_mask() : nullptr);
  return grpc::Status::OK;
}

grpc::Status AgentService::DeleteAgent(grpc::ServerContext* ctx, const v1::DeleteAgentRequest* req,
                                       google::protobuf::Empty* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Agent.DeleteAgent");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<spiffe::SpiffeId> id = AgentIdFromProto(req->id(), req->has_id(), "id");
  if (!id.ok()) return ToGrpc(id.status());
  absl::StatusOr<AgentRecord> deleted = store_->DeleteAgent(id->ToString());
  if (deleted.status().code() == absl::StatusCode::kNotFound) {
    return ToGrpc(absl::NotFoundError("agent not found"));
  }
  return ToGrpc(deleted.status());
}

grpc::Status AgentService::BanAgent(grpc::ServerContext* ctx, const v1::BanAgentRequest* req,
                                    google::protobuf::Empty* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Agent.BanAgent");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<spiffe::SpiffeId> id = AgentIdFromProto(req->id(), req->has_id(), "id");
  if (!id.ok()) return ToGrpc(id.status());
  absl::Status banned = store_->BanAgent(id->ToString());
  if (banned.code() == absl::StatusCode::kNotFound) {
    return ToGrpc(absl::NotFoundError("agent not found"));
  }
  return ToGrpc(banned);
}

grpc::Status AgentService::CreateJoinToken(grpc::ServerContext* ctx,
                                           const v1::CreateJoinTokenRequest* req,
                                           types::JoinToken* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Agent.CreateJoinToken");
  if (!caller.ok()) return ToGrpc(caller.status());
  if (req->ttl() <= 0) {
    return ToGrpc(absl::InvalidArgumentError("ttl is required, you must provide one"));
  }
  std::string token = req->token().empty() ? RandomUuid() : req->token();
  absl::Status valid_token = ValidateToken(token);
  if (!valid_token.ok()) return ToGrpc(valid_token);

  std::optional<spiffe::SpiffeId> agent_id;
  if (req->has_agent_id()) {
    auto error = [](absl::string_view reason) {
      return ToGrpc(absl::InvalidArgumentError(absl::StrCat("invalid agent_id: ", reason)));
    };
    absl::StatusOr<spiffe::SpiffeId> parsed = apitypes::SpiffeIdFromProto(req->agent_id());
    if (!parsed.ok()) return error(parsed.status().message());
    if (!parsed->MemberOf(td_)) {
      return error(absl::StrCat("\"", parsed->ToString(), "\" is not a member of trust domain \"",
                                td_.name(), "\""));
    }
    if (parsed->path().empty()) {
      return error(absl::StrCat("\"", parsed->ToString(), "\" has an empty path"));
    }
    if (IsReservedPath(parsed->path())) {
      return error(absl::StrCat("\"", parsed->ToString(),
                                "\" is in the reserved namespace \"/spire\""));
    }
    agent_id = *parsed;
  }

  JoinTokenRecord record;
  record.set_token(token);
  record.set_expires_at(absl::ToUnixSeconds(clock_->Now() + absl::Seconds(req->ttl())));
  absl::Status created;
  if (agent_id.has_value()) {
    // The node alias SPIRE creates: the agent attested with this token gets
    // the extra identity `agent_id`.
    absl::StatusOr<spiffe::SpiffeId> token_id =
        spiffe::SpiffeId::FromPath(td_, absl::StrCat("/spire/agent/join_token/", token));
    if (!token_id.ok()) return ToGrpc(token_id.status());
    types::Entry alias;
    *alias.mutable_spiffe_id() = apitypes::SpiffeIdToProto(*agent_id);
    *alias.mutable_parent_id() = apitypes::SpiffeIdToProto(*token_id);
    types::Selector* selector = alias.add_selectors();
    selector->set_type("spiffe_id");
    selector->set_value(token_id->ToString());
    created = store_->CreateJoinTokenWithEntry(record, alias).status();
  } else {
    created = store_->CreateJoinToken(record);
  }
  if (!created.ok()) return ToGrpc(created);
  resp->set_value(token);
  resp->set_expires_at(record.expires_at());
  return grpc::Status::OK;
}

}  // namespace sigil::server::api
