#pragma once

// What the sigil-server and sigil-agent client CLIs share beyond their flag
// syntax (common/cli_flags.h), so that both print exactly what SPIRE's
// spire-server and spire-agent print:
//   - the -output format and protobuf JSON as SPIRE's `-output json` prints it;
//   - Go's text forms of times and gRPC status codes;
//   - SocketClient: a gRPC channel to a Unix socket, with SPIRE's wording of
//     failed calls and the reason an unreachable socket cannot be reached;
//   - Command, the interface of every client command, and `healthcheck`,
//     which both CLIs offer with the same flags and output;
//   - CommandTable and CommandList: finding a command by its words, and the
//     usage text.
// Each CLI keeps what only it needs (SPIFFE ID arguments and the entry
// printer in server/cli, the Workload Endpoint address in node-agent/cli).

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/cli_flags.h"
#include "google/protobuf/message.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace sigil::cli {

// ---- output format ----

// -output: "pretty" (SPIRE's human format, the default) or "json".
enum class OutputFormat { kPretty, kJson };

// Case-insensitive "pretty", "prettyprint" or "json", as SPIRE accepts.
// InvalidArgument ("unknown format option: \"xml\"") otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view s);

inline constexpr char kOutputFlagUsage[] = "Desired output format (pretty, json); default: pretty.";

// Registers the output format flag -<name> on `flags`, storing into
// `*format` (which must outlive parsing). A bad value fails parsing with
// "invalid value \"xml\" for flag -output: bad formatter flag: unknown
// format option: \"xml\"", as SPIRE's does.
void AddOutputFlag(FlagSet& flags, OutputFormat* format, const std::string& name = "output",
                   const std::string& usage = kOutputFlagUsage);

// One message as SPIRE's `-output json` prints it: compact protobuf JSON on
// one line, proto field names, fields at their default values included
// ("hint":"", "selectors":[]), bytes as standard base64, and object keys
// sorted at every level (SPIRE's printer goes through a Go map, which sorts
// them), map keys included.
std::string ProtoToJson(const google::protobuf::Message& message);

// Several messages (`api fetch jwt` prints its two responses) as a JSON
// array of ProtoToJson objects; a single message is printed without the
// array.
std::string ProtosToJson(const std::vector<const google::protobuf::Message*>& messages);

// ---- Go's text forms ----

// A time as Go's time.Time.String() prints a UTC time:
// "2026-01-01 00:00:00 +0000 UTC". Sub-second digits are dropped (API times
// are whole seconds, and so are X.509 validity times).
std::string GoTimeUtc(absl::Time t);

// gRPC status code names as Go's codes.Code prints them ("NotFound",
// "PermissionDenied", ...; "Code(42)" for unknown values).
std::string GrpcCodeName(int code);

// ---- the client side of a Unix socket ----

// The gRPC target for a Unix socket path: "unix:" and the path, in which
// every byte but RFC 3986 unreserved characters and '/' is percent-encoded.
// gRPC parses its target as a URI and percent-decodes the path, so a path
// holding '%', '?', '#' or a space only reaches the socket escaped.
std::string UnixTarget(absl::string_view socket_path);

// A client of the gRPC services behind one Unix socket; each CLI's client
// extends it with the stubs of its API. The channel is created on first
// use, so commands that fail validation never open it. Not thread-safe.
class SocketClient {
 public:
  // `peer` names what serves the socket in messages: "server", "agent".
  SocketClient(std::string peer, std::string socket_path);
  SocketClient(const SocketClient&) = delete;
  SocketClient& operator=(const SocketClient&) = delete;

  const std::string& peer() const { return peer_; }
  const std::string& socket_path() const { return socket_path_; }

  grpc::health::v1::Health::Stub& Health();

  // Describes a failed call as SPIRE's CLIs do:
  // "rpc error: code = NotFound desc = <message>". When the call failed
  // with UNAVAILABLE and the socket file tells why, says that instead:
  // "the <peer> is not running at <path>: the socket does not exist" (or
  // ": connection refused (stale socket?)"), "cannot reach the <peer> at
  // <path>: not a Unix socket" (or ": permission denied", or the errno text
  // when the path cannot be examined).
  std::string DescribeRpcError(const grpc::Status& status) const;

  // DescribeRpcError as an absl::Status of the same code (Internal for an
  // OK status, which a failed call never has), its message prefixed with
  // "<context>: " when `context` is not empty.
  absl::Status RpcError(const grpc::Status& status, absl::string_view context = "") const;

 protected:
  // The insecure channel to UnixTarget(socket_path()).
  std::shared_ptr<grpc::Channel> Channel();

 private:
  std::string peer_;
  std::string socket_path_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// ---- commands ----

// One client command of a CLI whose commands run with a `Context` (each CLI
// defines its own: the streams, the output format, its SocketClient). The
// runner creates the command, lets it register its flags, parses them, and
// calls Run.
template <typename Context>
class Command {
 public:
  virtual ~Command() = default;
  // Registers the command's own flags; their targets are members of the
  // command, which outlives parsing.
  virtual void AddFlags(FlagSet& flags) = 0;
  // Validates the parsed flags (`flags` tells which were given) and runs.
  // A non-OK status is printed to stderr after the command's error prefix
  // and the process exits 1; its code is not shown.
  virtual absl::Status Run(const FlagSet& flags, Context& ctx) = 0;
};

// ---- healthcheck ----

// The flags of SPIRE's `healthcheck`.
struct HealthcheckFlags {
  // Accepted for the scripts that pass it: SPIRE performs the same probe
  // either way, and so does Sigil.
  bool shallow = false;
  // Print progress, and why the check failed.
  bool verbose = false;
};

// Registers -shallow and -verbose on `flags`, storing into `*out`.
void AddHealthcheckFlags(FlagSet& flags, HealthcheckFlags* out);

// How long the health probe may take (SPIRE's server probe allows 5 s; the
// agent's gets the same, so a hung agent does not hang the probe).
inline constexpr absl::Duration kHealthcheckTimeout = absl::Seconds(5);

// SPIRE's `healthcheck`: grpc.health.v1 Check for the whole peer (empty
// service name). Prints "<Peer> is healthy." to `out` (the response as JSON
// with kJson) and returns OK when it answers SERVING. Unavailable
// otherwise: "unable to determine health" when the call fails (with
// -verbose, `err` first gets "Failed to check health: " and
// DescribeRpcError), "<peer> returned status \"NOT_SERVING\"" for another
// status. With -verbose, `out` first gets "Checking <peer> health...".
absl::Status CheckHealth(SocketClient& client, const HealthcheckFlags& flags, OutputFormat format,
                         std::ostream& out, std::ostream& err);

// SPIRE's `healthcheck` as a command of either CLI. `Context` provides
// client() (a SocketClient), format(), out() and err().
template <typename Context>
class HealthcheckCommand final : public Command<Context> {
 public:
  void AddFlags(FlagSet& flags) override { AddHealthcheckFlags(flags, &flags_); }
  absl::Status Run(const FlagSet&, Context& ctx) override {
    return CheckHealth(ctx.client(), flags_, ctx.format(), ctx.out(), ctx.err());
  }

 private:
  HealthcheckFlags flags_;
};

template <typename Context>
std::unique_ptr<Command<Context>> NewHealthcheckCommand() {
  return std::make_unique<HealthcheckCommand<Context>>();
}

// ---- command dispatch ----

// A client command as dispatch and usage see it.
struct CommandInfo {
  // Its words, e.g. "entry create" or "api fetch x509".
  std::string name;
  // One line, shown in command lists and above the command's flags.
  std::string synopsis;
};

// The client commands of one CLI: which command a command line names, and
// the usage text printed when it names none. Immutable and thread-safe.
class CommandTable {
 public:
  // `program` is the binary's name ("sigil-server"). The top-level usage is
  // "Usage: <program> <command> [<args>]\n\n", then `usage_header` (the
  // commands the table does not hold, ending with a heading for the client
  // commands), then the list of `commands`, in the order given.
  CommandTable(std::string program, std::string usage_header, std::vector<CommandInfo> commands);

  const std::vector<CommandInfo>& commands() const { return commands_; }

  // The index of the command whose words begin `args`, preferring the
  // longest name, with its word count in `*words`; nullopt when none does.
  std::optional<size_t> Find(const std::vector<std::string>& args, size_t* words) const;

  // True when `word` is the first word of some command ("entry",
  // "healthcheck", "api"), i.e. main() should hand the command line over.
  bool IsFirstWord(absl::string_view word) const;

  // For a command line Find does not resolve, prints to `err` what SPIRE's
  // CLIs print and returns the exit code:
  //   - no arguments: the top-level usage; 1.
  //   - "help", "-h", "-help", "--h", "--help": the top-level usage; 0.
  //   - leading words naming a group ("entry", "localauthority x509"): the
  //     group's usage and subcommands; 0 when a help flag follows the group,
  //     else 1, after "Unknown command: <group> <word>\n\n" when another
  //     word follows it.
  //   - anything else: "Unknown command: <word>\n\n" and the top-level usage; 1.
  int PrintUnresolved(const std::vector<std::string>& args, std::ostream& err) const;

 private:
  void PrintUsage(std::ostream& err) const;
  // "    <name>    <synopsis>" for every command whose name starts with
  // `prefix`, synopses aligned.
  void PrintList(std::ostream& err, absl::string_view prefix) const;

  std::string program_;
  std::string usage_header_;
  std::vector<CommandInfo> commands_;
};

// A CLI's own command list (any struct with `name` and `synopsis` members,
// plus whatever else the CLI needs to run a command), sorted by name, with
// the CommandTable over it. Immutable and thread-safe.
template <typename Spec>
class CommandList {
 public:
  CommandList(std::string program, std::string usage_header, std::vector<Spec> specs)
      : specs_(SortedByName(std::move(specs))),
        table_(std::move(program), std::move(usage_header), Infos(specs_)) {}

  const std::vector<Spec>& specs() const { return specs_; }
  const CommandTable& table() const { return table_; }

  // The command whose words begin `args` (CommandTable::Find), or null.
  const Spec* Find(const std::vector<std::string>& args, size_t* words) const {
    std::optional<size_t> index = table_.Find(args, words);
    return index.has_value() ? &specs_[*index] : nullptr;
  }

 private:
  static std::vector<Spec> SortedByName(std::vector<Spec> specs) {
    std::stable_sort(specs.begin(), specs.end(),
                     [](const Spec& a, const Spec& b) { return a.name < b.name; });
    return specs;
  }
  static std::vector<CommandInfo> Infos(const std::vector<Spec>& specs) {
    std::vector<CommandInfo> infos;
    infos.reserve(specs.size());
    for (const Spec& spec : specs) infos.push_back({spec.name, spec.synopsis});
    return infos;
  }

  std::vector<Spec> specs_;
  CommandTable table_;
};

// Parses a command's flags (`args` are the words after the command's name)
// and, when the command must not run, prints what SPIRE's CLIs print to
// `err` and returns the exit code: Go's flag error and the usage (1); on a
// help request the synopsis and the usage (0); for an argument left after
// the flags, "<error_prefix>unexpected argument \"x\" (flags must be given
// as -name value)" (1). nullopt when the command should run.
std::optional<int> ParseCommandFlags(FlagSet& flags, const std::vector<std::string>& args,
                                     absl::string_view synopsis, absl::string_view error_prefix,
                                     std::ostream& err);

}  // namespace sigil::cli
