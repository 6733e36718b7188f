// token generate — SPIRE's `spire-server token generate`
// (Agent.CreateJoinToken). `healthcheck` is common/cli_output.h's.

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/cli/command.h"

namespace sigil::server::cli {
namespace {

namespace agentv1 = ::spire::api::server::agent::v1;
namespace types = ::spire::api::types;

class TokenGenerateCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.Int("ttl", &ttl_, 600, "Token TTL in seconds");
    flags.String("spiffeID", &spiffe_id_, "",
                 "Additional SPIFFE ID to assign the token owner (optional)");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (ttl_ < 0 || ttl_ > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "-ttl must be between 0 and ", std::numeric_limits<int32_t>::max(), " seconds"));
    }
    agentv1::CreateJoinTokenRequest req;
    req.set_ttl(static_cast<int32_t>(ttl_));
    if (!spiffe_id_.empty()) {
      SIGIL_ASSIGN_OR_RETURN(*req.mutable_agent_id(), ParseSpiffeIdArg("SPIFFE ID", spiffe_id_));
    }
    types::JoinToken token;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Agent().CreateJoinToken(&call, req, &token);
    if (!st.ok()) return ctx.client().RpcError(st);
    if (ctx.json()) {
      ctx.PrintJson(token);
      return absl::OkStatus();
    }
    ctx.out() << "Token: " << token.value() << "\n";
    if (spiffe_id_.empty()) ctx.out() << "Warning: Missing SPIFFE ID.\n";
    return absl::OkStatus();
  }

 private:
  int64_t ttl_ = 0;
  std::string spiffe_id_;
};

}  // namespace

std::unique_ptr<Command> NewTokenGenerateCommand() {
  return std::make_unique<TokenGenerateCommand>();
}

}  // namespace sigil::server::cli
