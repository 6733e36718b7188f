// agent list | show | count | evict | ban — SPIRE's `spire-server agent`
// commands over the Agent service.

#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "apitypes/convert.h"
#include "common/status_macros.h"
#include "google/protobuf/empty.pb.h"
#include "server/cli/command.h"

namespace sigil::server::cli {
namespace {

namespace agentv1 = ::spire::api::server::agent::v1;
namespace types = ::spire::api::types;

constexpr int32_t kListPageSize = 1000;

// -banned / -canReattest: "true" or "false" filter, anything else lists
// all (SPIRE's tri-state flag).
struct TriState {
  enum Value { kAll, kFalse, kTrue } value = kAll;
};

// The filters of `agent list` and `agent count`.
struct AgentFilterFlags {
  std::vector<std::string> selectors;
  std::string match_selectors_on;
  std::string attestation_type;
  std::string expires_before;
  TriState banned;
  TriState can_reattest;
};

void AddAgentFilterFlags(FlagSet& f, AgentFilterFlags* x) {
  f.StringList("selector", &x->selectors,
               "A colon-delimited type:value selector. Can be used more than once");
  f.String("attestationType", &x->attestation_type, "",
           "Filter by attestation type, like join_token or x509pop.");
  auto tri = [](TriState* target) {
    return [target](const std::string& v) {
      target->value = v == "true" ? TriState::kTrue : v == "false" ? TriState::kFalse : TriState::kAll;
      return absl::OkStatus();
    };
  };
  f.Func("canReattest",
         "Filter based on string received, 'true': agents that can reattest, 'false': agents "
         "that can't reattest, other value will return all.",
         "", tri(&x->can_reattest));
  f.Func("banned",
         "Filter based on string received, 'true': banned agents, 'false': not banned agents, "
         "other value will return all.",
         "", tri(&x->banned));
  f.String("expiresBefore", &x->expires_before, "",
           "Filter by expiration time (format: \"2006-01-02 15:04:05 -0700 -07\")");
  f.String("matchSelectorsOn", &x->match_selectors_on, "superset",
           "The match mode used when filtering by selectors. Options: exact, any, superset and "
           "subset");
}

template <typename Filter>
absl::Status BuildAgentFilter(const AgentFilterFlags& x, Filter* filter) {
  types::SelectorMatch::MatchBehavior match;
  if (x.match_selectors_on == "exact") {
    match = types::SelectorMatch::MATCH_EXACT;
  } else if (x.match_selectors_on == "subset") {
    match = types::SelectorMatch::MATCH_SUBSET;
  } else if (x.match_selectors_on == "superset") {
    match = types::SelectorMatch::MATCH_SUPERSET;
  } else if (x.match_selectors_on == "any") {
    match = types::SelectorMatch::MATCH_ANY;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported match behavior ", GoQuote(x.match_selectors_on),
                     ": use exact, any, superset or subset"));
  }
  if (!x.selectors.empty()) {
    types::SelectorMatch* m = filter->mutable_by_selector_match();
    for (const std::string& s : x.selectors) {
      absl::StatusOr<types::Selector> sel = ParseSelectorArg(s);
      if (!sel.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("error parsing selector ", GoQuote(s),
                                                       ": ", sel.status().message()));
      }
      *m->add_selectors() = *sel;
    }
    m->set_match(match);
  }
  if (!x.expires_before.empty()) {
    // Go's layout "2006-01-02 15:04:05 -0700 -07", which SPIRE checks and
    // passes on as text.
    static const std::regex kLayout(
        R"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4} [+-]\d{2})");
    if (!std::regex_match(x.expires_before, kLayout)) {
      return absl::InvalidArgumentError(
          absl::StrCat("date is not valid: ", GoQuote(x.expires_before),
                       " does not match \"2006-01-02 15:04:05 -0700 -07\""));
    }
    filter->set_by_expires_before(x.expires_before);
  }
  if (!x.attestation_type.empty()) filter->set_by_attestation_type(x.attestation_type);
  if (x.can_reattest.value != TriState::kAll) {
    filter->mutable_by_can_reattest()->set_value(x.can_reattest.value == TriState::kTrue);
  }
  if (x.banned.value != TriState::kAll) {
    filter->mutable_by_banned()->set_value(x.banned.value == TriState::kTrue);
  }
  return absl::OkStatus();
}

void PrintAgent(const types::Agent& agent, std::ostream& out) {
  out << "SPIFFE ID         : " << apitypes::SpiffeIdString(agent.id()) << "\n";
  out << "Attestation type  : " << agent.attestation_type() << "\n";
  out << "Expiration time   : " << GoTimeUtc(absl::FromUnixSeconds(agent.x509svid_expires_at()))
      << "\n";
  // A banned agent has no current SVID serial number.
  if (agent.banned()) {
    out << "Banned            : true\n";
  } else {
    out << "Serial number     : " << agent.x509svid_serial_number() << "\n";
  }
  out << "Can re-attest     : " << (agent.can_reattest() ? "true" : "false") << "\n";
  out << "\n";
}

// The -spiffeID of show/evict/ban.
absl::StatusOr<types::SPIFFEID> AgentIdFlag(const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError("a SPIFFE ID is required");
  return ParseSpiffeIdArg("SPIFFE ID", value);
}

class AgentListCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override { AddAgentFilterFlags(flags, &filter_); }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    agentv1::ListAgentsRequest req;
    SIGIL_RETURN_IF_ERROR(BuildAgentFilter(filter_, req.mutable_filter()));
    req.set_page_size(kListPageSize);
    agentv1::ListAgentsResponse result;
    SIGIL_RETURN_IF_ERROR(ListAllPages(ctx.client(), ctx.client().Agent(), &agentv1::Agent::Stub::ListAgents, req, "",
                                       [&](agentv1::ListAgentsResponse& page) {
                                         for (types::Agent& a : *page.mutable_agents()) {
                                           *result.add_agents() = std::move(a);
                                         }
                                       }));
    if (ctx.json()) {
      ctx.PrintJson(result);
      return absl::OkStatus();
    }
    if (result.agents_size() == 0) {
      ctx.out() << "No attested agents found\n";
      return absl::OkStatus();
    }
    ctx.out() << "Found " << Pluralize(result.agents_size(), "attested agent", "attested agents")
              << ":\n\n";
    for (const types::Agent& a : result.agents()) PrintAgent(a, ctx.out());
    return absl::OkStatus();
  }

 private:
  AgentFilterFlags filter_;
};

class AgentCountCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override { AddAgentFilterFlags(flags, &filter_); }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    agentv1::CountAgentsRequest req;
    SIGIL_RETURN_IF_ERROR(BuildAgentFilter(filter_, req.mutable_filter()));
    agentv1::CountAgentsResponse resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Agent().CountAgents(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st);
    if (ctx.json()) {
      ctx.PrintJson(resp);
    } else {
      ctx.out() << Pluralize(resp.count(), "attested agent", "attested agents") << "\n";
    }
    return absl::OkStatus();
  }

 private:
  AgentFilterFlags filter_;
};

class AgentShowCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("spiffeID", &spiffe_id_, "",
                 "The SPIFFE ID of the agent to show (agent identity)");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    agentv1::GetAgentRequest req;
    SIGIL_ASSIGN_OR_RETURN(*req.mutable_id(), AgentIdFlag(spiffe_id_));
    types::Agent agent;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Agent().GetAgent(&call, req, &agent);
    if (!st.ok()) return ctx.client().RpcError(st);
    if (ctx.json()) {
      ctx.PrintJson(agent);
      return absl::OkStatus();
    }
    ctx.out() << "Found an attested agent given its SPIFFE ID\n\n";
    PrintAgent(agent, ctx.out());
    for (const types::Selector& s : agent.selectors()) {
      ctx.out() << "Selectors         : " << s.type() << ":" << s.value() << "\n";
    }
    return absl::OkStatus();
  }

 private:
  std::string spiffe_id_;
};

class AgentEvictCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("spiffeID", &spiffe_id_, "",
                 "The SPIFFE ID of the agent to evict (agent identity)");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    agentv1::DeleteAgentRequest req;
    SIGIL_ASSIGN_OR_RETURN(*req.mutable_id(), AgentIdFlag(spiffe_id_));
    // Only agents can be evicted; say so before asking the server.
    if (!absl::StartsWith(req.id().path(), "/spire/agent/")) {
      return absl::InvalidArgumentError(
          absl::StrCat(GoQuote(spiffe_id_), " is not an agent SPIFFE ID: the path must start "
                                            "with /spire/agent/"));
    }
    google::protobuf::Empty resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Agent().DeleteAgent(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st, "failed to evict agent");
    if (ctx.json()) {
      ctx.PrintJson(resp);
    } else {
      ctx.out() << "Agent evicted successfully\n";
    }
    return absl::OkStatus();
  }

 private:
  std::string spiffe_id_;
};

class AgentBanCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("spiffeID", &spiffe_id_, "", "The SPIFFE ID of the agent to ban (agent identity)");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    agentv1::BanAgentRequest req;
    SIGIL_ASSIGN_OR_RETURN(*req.mutable_id(), AgentIdFlag(spiffe_id_));
    google::protobuf::Empty resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Agent().BanAgent(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st);
    if (ctx.json()) {
      ctx.PrintJson(resp);
    } else {
      ctx.out() << "Agent banned successfully\n";
    }
    return absl::OkStatus();
  }

 private:
  std::string spiffe_id_;
};

}  // namespace

std::unique_ptr<Command> NewAgentListCommand() { return std::make_unique<AgentListCommand>(); }
std::unique_ptr<Command> NewAgentShowCommand() { return std::make_unique<AgentShowCommand>(); }
std::unique_ptr<Command> NewAgentCountCommand() { return std::make_unique<AgentCountCommand>(); }
std::unique_ptr<Command> NewAgentEvictCommand() { return std::make_unique<AgentEvictCommand>(); }
std::unique_ptr<Command> NewAgentBanCommand() { return std::make_unique<AgentBanCommand>(); }

}  // namespace sigil::server::cli
