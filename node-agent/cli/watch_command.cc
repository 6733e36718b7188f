// api watch — SPIRE's `spire-agent api watch`: stays attached to
// FetchX509SVID and prints every update as it arrives, reconnecting with
// backoff when the stream fails, until stopped (SIGINT/SIGTERM).

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "node-agent/cli/command.h"
#include "node-agent/cli/x509_response.h"

namespace sigil::agent::cli {
namespace {

// go-spiffe's watcher backs off from one second, doubling, to this cap.
constexpr absl::Duration kInitialBackoff = absl::Seconds(1);
constexpr absl::Duration kMaxBackoff = absl::Seconds(30);

class WatchCommand final : public Command {
 public:
  void AddFlags(FlagSet&) override {}

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    StopToken local_stop;
    StopToken* stop = ctx.stop() != nullptr ? ctx.stop() : &local_stop;
    absl::Duration backoff = kInitialBackoff;
    absl::Time last_update = ctx.clock().Now();
    while (!stop->stopped()) {
      grpc::ClientContext call;
      ctx.client().PrepareContext(&call);
      int cancel = stop->AddCallback([&call] { call.TryCancel(); });
      auto reader = ctx.client().Workload().FetchX509SVID(&call, ::X509SVIDRequest());
      ::X509SVIDResponse resp;
      while (reader->Read(&resp)) {
        backoff = kInitialBackoff;
        absl::Time now = ctx.clock().Now();
        if (ctx.json()) {
          ctx.PrintJson(resp);
        } else {
          absl::StatusOr<ParsedX509Response> parsed = ParseX509Response(resp, now);
          if (parsed.ok()) {
            PrintX509Response(*parsed, now - last_update, ctx.out());
          } else {
            ctx.err() << parsed.status().message() << "\n";
            ctx.err().flush();
          }
        }
        last_update = now;
        ctx.out().flush();
      }
      grpc::Status st = reader->Finish();
      stop->RemoveCallback(cancel);
      if (stop->stopped()) break;
      // A missing security header or a malformed request will not get
      // better by retrying (go-spiffe gives up on InvalidArgument too).
      if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        return ctx.client().RpcError(st);
      }
      ctx.err() << (st.ok() ? std::string("the agent closed the stream")
                            : ctx.client().DescribeRpcError(st))
                << "; retrying in " << ::sigil::cli::FormatGoDuration(backoff) << "\n";
      ctx.err().flush();
      if (stop->WaitFor(backoff)) break;
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<Command> NewWatchCommand() { return std::make_unique<WatchCommand>(); }

}  // namespace sigil::agent::cli
