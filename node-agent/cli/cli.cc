#include "node-agent/cli/cli.h"

#include <cstdlib>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "node-agent/cli/command.h"

namespace sigil::agent::cli {
namespace {

std::vector<CommandSpec> BuildCommands() {
  std::vector<CommandSpec> specs = {
      {"healthcheck", "Determines agent health status",
       ::sigil::cli::NewHealthcheckCommand<CommandContext>, "Agent is unhealthy: "},
      // SPIRE keeps `api fetch` as the original name of `api fetch x509`.
      {"api fetch", "Fetches X509 SVIDs from the Workload API (same as api fetch x509)",
       NewFetchX509Command, "", /*has_timeout=*/true},
      {"api fetch x509", "Fetches X509 SVIDs from the Workload API", NewFetchX509Command, "",
       /*has_timeout=*/true},
      {"api fetch jwt", "Fetches a JWT SVID from the Workload API", NewFetchJwtCommand, "",
       /*has_timeout=*/true},
      {"api validate jwt", "Validates a JWT SVID", NewValidateJwtCommand, "",
       /*has_timeout=*/true},
      {"api watch", "Attaches to the Workload API and prints updates as they're received",
       NewWatchCommand, "", /*has_timeout=*/false, /*long_running=*/true},
  };
  return specs;
}

// The top-level usage above the list of client commands.
constexpr char kUsageHeader[] =
    "Agent commands:\n"
    "    run                 Runs the agent\n\n"
    "Client commands (they talk to a running agent's Workload API over -socketPath):\n";

// Every client command, sorted by name, for dispatch and usage text.
const ::sigil::cli::CommandList<CommandSpec>& Commands() {
  static const auto* const kCommands =
      new ::sigil::cli::CommandList<CommandSpec>("sigil-agent", kUsageHeader, BuildCommands());
  return *kCommands;
}

}  // namespace

absl::StatusOr<std::string> ResolveSocketPath(bool flag_given, const std::string& flag_value,
                                              const std::optional<std::string>& endpoint_socket) {
  // As SPIRE does, an empty -socketPath means the default.
  if (flag_given && !flag_value.empty()) return flag_value;
  if (endpoint_socket.has_value() && !endpoint_socket->empty()) {
    absl::StatusOr<std::string> path = ParseEndpointSocket(*endpoint_socket);
    if (!path.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("invalid ", kEndpointSocketEnv, " ",
                                                     GoQuote(*endpoint_socket), ": ",
                                                     path.status().message()));
    }
    return path;
  }
  return std::string(kDefaultSocketPath);
}

int RunCommandLine(const std::vector<std::string>& args, const CommandEnv& env) {
  std::ostream& err = *env.err;
  size_t words = 0;
  const CommandSpec* found = Commands().Find(args, &words);
  if (found == nullptr) return Commands().table().PrintUnresolved(args, err);
  const CommandSpec& spec = *found;

  std::unique_ptr<Command> command = spec.make();
  FlagSet flags(spec.name);
  std::string socket_path;
  OutputFormat format = OutputFormat::kPretty;
  absl::Duration timeout = kDefaultTimeout;
  flags.String("socketPath", &socket_path, kDefaultSocketPath,
               absl::StrCat("Path to the Sigil Agent API Unix domain socket; when not given, ",
                            kEndpointSocketEnv, " (unix:///path) is used if set"));
  ::sigil::cli::AddOutputFlag(flags, &format);
  if (spec.name == "api fetch jwt") {
    // SPIRE keeps its old name for -output on this command.
    ::sigil::cli::AddOutputFlag(flags, &format, "format", "deprecated; use -output");
  }
  if (spec.has_timeout) {
    flags.Duration("timeout", &timeout, kDefaultTimeout, "Time to wait for a response");
  }
  command->AddFlags(flags);

  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(words), args.end());
  if (std::optional<int> code =
          ::sigil::cli::ParseCommandFlags(flags, rest, spec.synopsis, spec.error_prefix, err)) {
    return *code;
  }
  if (timeout < absl::ZeroDuration()) {
    err << spec.error_prefix << "-timeout must not be negative (0 means no timeout)\n";
    return 1;
  }
  absl::StatusOr<std::string> resolved =
      ResolveSocketPath(flags.IsSet("socketPath"), socket_path, env.endpoint_socket);
  if (!resolved.ok()) {
    err << spec.error_prefix << resolved.status().message() << "\n";
    return 1;
  }

  WorkloadClient client(*resolved, spec.has_timeout ? timeout : absl::ZeroDuration());
  CommandContext ctx(env, format, &client);
  absl::Status status = command->Run(flags, ctx);
  if (!status.ok()) {
    err << spec.error_prefix << status.message() << "\n";
    return 1;
  }
  return 0;
}

int RunAgentClientCommand(const std::vector<std::string>& args, std::ostream& out,
                          std::ostream& err) {
  CommandEnv env;
  env.out = &out;
  env.err = &err;
  env.clock = RealClock::Get();
  if (const char* value = std::getenv(kEndpointSocketEnv); value != nullptr) {
    env.endpoint_socket = std::string(value);
  }
  StopToken stop;
  env.stop = &stop;
  size_t words = 0;
  const CommandSpec* spec = Commands().Find(args, &words);
  std::unique_ptr<SignalStopper> signals;
  if (spec != nullptr && spec->long_running) {
    signals = std::make_unique<SignalStopper>(&stop);
  }
  int code = RunCommandLine(args, env);
  out.flush();
  err.flush();
  return code;
}

bool IsAgentClientCommand(const std::string& first_arg) {
  return Commands().table().IsFirstWord(first_arg);
}

}  // namespace sigil::agent::cli
