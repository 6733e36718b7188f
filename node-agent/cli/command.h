#pragma once

// The framework shared by the agent client commands (internal to
// node-agent/cli/), shaped like server/cli/command.h: every command
// registers its flags on a Go-style FlagSet, the runner adds -socketPath and
// -output (and -timeout where the command wants it), parses, resolves the
// socket and calls Run with a context holding the streams, the output
// format, the clock and the Workload API client — SPIRE's adapter.

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/cli_flags.h"
#include "common/clock.h"
#include "google/protobuf/message.h"
#include "node-agent/cli/cli_util.h"
#include "node-agent/cli/client.h"
#include "node-agent/cli/stop.h"

namespace sigil::agent::cli {

using FlagSet = ::sigil::cli::FlagSet;

// What a command reads and writes. RunAgentClientCommand fills it from the
// process (standard streams, real clock, the environment, a StopToken
// tripped by SIGINT/SIGTERM); tests pass their own.
struct CommandEnv {
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  const Clock* clock = nullptr;
  // The value of SPIFFE_ENDPOINT_SOCKET, if the variable is set.
  std::optional<std::string> endpoint_socket;
  // Stops long-running commands; may be null for commands that never block
  // for long.
  StopToken* stop = nullptr;
};

class CommandContext {
 public:
  CommandContext(const CommandEnv& env, OutputFormat format, WorkloadClient* client)
      : env_(env), format_(format), client_(client) {}

  std::ostream& out() { return *env_.out; }
  std::ostream& err() { return *env_.err; }
  const Clock& clock() const { return *env_.clock; }
  StopToken* stop() { return env_.stop; }
  OutputFormat format() const { return format_; }
  bool json() const { return format_ == OutputFormat::kJson; }
  WorkloadClient& client() { return *client_; }

  // Writes `message` to out() as one line of JSON (ProtoToJson).
  void PrintJson(const google::protobuf::Message& message) {
    out() << ProtoToJson(message) << "\n";
  }

 private:
  CommandEnv env_;
  OutputFormat format_;
  WorkloadClient* client_;
};

// Every client command implements common/cli_output.h's interface.
using Command = ::sigil::cli::Command<CommandContext>;

struct CommandSpec {
  // The command words, e.g. "api fetch x509".
  std::string name;
  std::string synopsis;
  std::function<std::unique_ptr<Command>()> make;
  // Printed before a failed command's message. SPIRE's `api` commands
  // print the bare error.
  std::string error_prefix;
  // Whether the command takes -timeout (SPIRE's `api fetch` and
  // `api validate` do; `healthcheck` and `api watch` do not).
  bool has_timeout = false;
  // Whether the command runs until stopped (SIGINT/SIGTERM are handled
  // while it runs).
  bool long_running = false;
};

// Runs one command line (without argv[0]) against `env`; returns the exit
// code: 0 on success or help, 1 on any error (usage, validation, RPC).
int RunCommandLine(const std::vector<std::string>& args, const CommandEnv& env);

// The socket a command talks to: `flag_value` when -socketPath was given
// with a non-empty value, else the path from `endpoint_socket`
// (SPIFFE_ENDPOINT_SOCKET) when set and non-empty, else kDefaultSocketPath.
// InvalidArgument ("invalid SPIFFE_ENDPOINT_SOCKET \"...\": ...") when the
// variable is used and malformed.
absl::StatusOr<std::string> ResolveSocketPath(bool flag_given, const std::string& flag_value,
                                              const std::optional<std::string>& endpoint_socket);

// SPIRE's default -timeout for the api commands.
inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(5);

// Factories (one per command; defined in the *_command.cc files).
std::unique_ptr<Command> NewFetchX509Command();
std::unique_ptr<Command> NewFetchJwtCommand();
std::unique_ptr<Command> NewValidateJwtCommand();
std::unique_ptr<Command> NewWatchCommand();

}  // namespace sigil::agent::cli
