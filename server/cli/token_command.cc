// token generate and healthcheck — SPIRE's `spire-server token generate`
// (Agent.CreateJoinToken) and `spire-server healthcheck` (grpc.health.v1).

#include <chrono>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/cli/command.h"

namespace sigil::server::cli {
namespace {

namespace agentv1 = ::spire::api::server::agent::v1;
namespace types = ::spire::api::types;
namespace health = ::grpc::health::v1;

// SPIRE gives its health probe five seconds.
constexpr std::chrono::seconds kHealthTimeout(5);

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

// Failures print as "Server is unhealthy: <reason>" (the spec's prefix).
class HealthcheckCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    // SPIRE accepts -shallow but performs the same probe either way; so
    // does Sigil, for scripts that pass it.
    flags.Bool("shallow", &shallow_, false, "Perform a less stringent health check");
    flags.Bool("verbose", &verbose_, false, "Print verbose information");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (verbose_) ctx.out() << "Checking server health...\n";
    health::HealthCheckRequest req;
    health::HealthCheckResponse resp;
    grpc::ClientContext call;
    // gRPC deadlines are wall-clock, whatever clock the command was given.
    call.set_deadline(std::chrono::system_clock::now() + kHealthTimeout);
    grpc::Status st = ctx.client().Health().Check(&call, req, &resp);
    if (!st.ok()) {
      if (verbose_) {
        ctx.err() << "Failed to check health: " << ctx.client().DescribeRpcError(st) << "\n";
      }
      return absl::UnavailableError("unable to determine health");
    }
    if (resp.status() != health::HealthCheckResponse::SERVING) {
      return absl::UnavailableError(absl::StrCat(
          "server returned status ",
          GoQuote(health::HealthCheckResponse::ServingStatus_Name(resp.status()))));
    }
    if (ctx.json()) {
      ctx.PrintJson(resp);
    } else {
      ctx.out() << "Server is healthy.\n";
    }
    return absl::OkStatus();
  }

 private:
  bool shallow_ = false;
  bool verbose_ = false;
};

}  // namespace

std::unique_ptr<Command> NewTokenGenerateCommand() {
  return std::make_unique<TokenGenerateCommand>();
}
std::unique_ptr<Command> NewHealthcheckCommand() { return std::make_unique<HealthcheckCommand>(); }

}  // namespace sigil::server::cli
