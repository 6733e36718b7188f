#include "common/cli_output.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"

namespace sigil::cli {

// ---- output format ----

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view s) {
  std::string lower = absl::AsciiStrToLower(s);
  if (lower == "json") return OutputFormat::kJson;
  if (lower == "pretty" || lower == "prettyprint") return OutputFormat::kPretty;
  return absl::InvalidArgumentError(absl::StrCat("unknown format option: ", GoQuote(s)));
}

void AddOutputFlag(FlagSet& flags, OutputFormat* format, const std::string& name,
                   const std::string& usage) {
  flags.Func(name, usage, "", [format](const std::string& value) -> absl::Status {
    absl::StatusOr<OutputFormat> parsed = ParseOutputFormat(value);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad formatter flag: ", parsed.status().message()));
    }
    *format = *parsed;
    return absl::OkStatus();
  });
}

namespace {

nlohmann::json ProtoToJsonValue(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  // Serializing a well-formed in-memory message cannot fail, and the
  // printer's output is always valid JSON.
  (void)google::protobuf::util::MessageToJsonString(message, &text, options);
  // nlohmann's default object type is an ordered std::map: parsing and
  // dumping sorts the keys.
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string ProtoToJson(const google::protobuf::Message& message) {
  return Dump(ProtoToJsonValue(message));
}

std::string ProtosToJson(const std::vector<const google::protobuf::Message*>& messages) {
  if (messages.size() == 1) return ProtoToJson(*messages[0]);
  nlohmann::json array = nlohmann::json::array();
  for (const google::protobuf::Message* m : messages) array.push_back(ProtoToJsonValue(*m));
  return Dump(array);
}

// ---- Go's text forms ----

std::string GoTimeUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S +0000 UTC", t, absl::UTCTimeZone());
}

std::string GrpcCodeName(int code) {
  static const char* const kNames[] = {
      "OK",       "Canceled",      "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",    "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  if (code >= 0 && code < static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) {
    return kNames[code];
  }
  return absl::StrCat("Code(", code, ")");
}

// ---- the client side of a Unix socket ----

std::string UnixTarget(absl::string_view socket_path) {
  std::string target = "unix:";
  for (unsigned char c : socket_path) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      target += static_cast<char>(c);
    } else {
      absl::StrAppend(&target, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return target;
}

SocketClient::SocketClient(std::string peer, std::string socket_path)
    : peer_(std::move(peer)), socket_path_(std::move(socket_path)) {}

std::shared_ptr<grpc::Channel> SocketClient::Channel() {
  if (channel_ == nullptr) {
    channel_ = grpc::CreateChannel(UnixTarget(socket_path_), grpc::InsecureChannelCredentials());
  }
  return channel_;
}

grpc::health::v1::Health::Stub& SocketClient::Health() {
  if (health_ == nullptr) health_ = grpc::health::v1::Health::NewStub(Channel());
  return *health_;
}

std::string SocketClient::DescribeRpcError(const grpc::Status& status) const {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    // gRPC only says "failed to connect"; the socket file tells why.
    struct stat st;
    if (stat(socket_path_.c_str(), &st) != 0) {
      int err = errno;
      if (err == ENOENT) {
        return absl::StrCat("the ", peer_, " is not running at ", socket_path_,
                            ": the socket does not exist");
      }
      return absl::StrCat("cannot reach the ", peer_, " at ", socket_path_, ": ",
                          std::strerror(err));
    }
    if (!S_ISSOCK(st.st_mode)) {
      return absl::StrCat("cannot reach the ", peer_, " at ", socket_path_, ": not a Unix socket");
    }
    if (access(socket_path_.c_str(), W_OK) != 0 && errno == EACCES) {
      return absl::StrCat("cannot reach the ", peer_, " at ", socket_path_, ": permission denied");
    }
    if (absl::StrContains(status.error_message(), "Connection refused")) {
      return absl::StrCat("the ", peer_, " is not running at ", socket_path_,
                          ": connection refused (stale socket?)");
    }
  }
  return absl::StrCat("rpc error: code = ", GrpcCodeName(status.error_code()),
                      " desc = ", status.error_message());
}

absl::Status SocketClient::RpcError(const grpc::Status& status, absl::string_view context) const {
  std::string message = DescribeRpcError(status);
  if (!context.empty()) message = absl::StrCat(context, ": ", message);
  absl::StatusCode code = static_cast<absl::StatusCode>(status.error_code());
  return absl::Status(code == absl::StatusCode::kOk ? absl::StatusCode::kInternal : code, message);
}

// ---- healthcheck ----

void AddHealthcheckFlags(FlagSet& flags, HealthcheckFlags* out) {
  flags.Bool("shallow", &out->shallow, false, "Perform a less stringent health check");
  flags.Bool("verbose", &out->verbose, false, "Print verbose information");
}

absl::Status CheckHealth(SocketClient& client, const HealthcheckFlags& flags, OutputFormat format,
                         std::ostream& out, std::ostream& err) {
  namespace health = ::grpc::health::v1;
  if (flags.verbose) out << "Checking " << client.peer() << " health...\n";
  health::HealthCheckRequest req;
  health::HealthCheckResponse resp;
  grpc::ClientContext call;
  // gRPC deadlines are wall-clock, whatever clock the command was given.
  call.set_deadline(std::chrono::system_clock::now() +
                    absl::ToChronoNanoseconds(kHealthcheckTimeout));
  grpc::Status st = client.Health().Check(&call, req, &resp);
  if (!st.ok()) {
    if (flags.verbose) err << "Failed to check health: " << client.DescribeRpcError(st) << "\n";
    return absl::UnavailableError("unable to determine health");
  }
  if (resp.status() != health::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(
        absl::StrCat(client.peer(), " returned status ",
                     GoQuote(health::HealthCheckResponse::ServingStatus_Name(resp.status()))));
  }
  if (format == OutputFormat::kJson) {
    out << ProtoToJson(resp) << "\n";
  } else {
    std::string peer = client.peer();
    if (!peer.empty()) peer[0] = absl::ascii_toupper(static_cast<unsigned char>(peer[0]));
    out << peer << " is healthy.\n";
  }
  return absl::OkStatus();
}

// ---- command dispatch ----

namespace {

bool IsHelpArg(absl::string_view arg) {
  return arg == "-h" || arg == "-help" || arg == "--h" || arg == "--help";
}

// Whether the words of `name` begin `args`; their count in `*words`.
bool NameBeginsArgs(absl::string_view name, const std::vector<std::string>& args, size_t* words) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, ' ');
  if (parts.size() > args.size()) return false;
  if (!std::equal(parts.begin(), parts.end(), args.begin())) return false;
  *words = parts.size();
  return true;
}

}  // namespace

CommandTable::CommandTable(std::string program, std::string usage_header,
                           std::vector<CommandInfo> commands)
    : program_(std::move(program)),
      usage_header_(std::move(usage_header)),
      commands_(std::move(commands)) {}

std::optional<size_t> CommandTable::Find(const std::vector<std::string>& args,
                                         size_t* words) const {
  std::optional<size_t> best;
  size_t best_words = 0;
  for (size_t i = 0; i < commands_.size(); ++i) {
    size_t n = 0;
    if (NameBeginsArgs(commands_[i].name, args, &n) && n > best_words) {
      best = i;
      best_words = n;
    }
  }
  if (best.has_value()) *words = best_words;
  return best;
}

bool CommandTable::IsFirstWord(absl::string_view word) const {
  for (const CommandInfo& command : commands_) {
    if (absl::string_view(command.name).substr(0, command.name.find(' ')) == word) return true;
  }
  return false;
}

void CommandTable::PrintList(std::ostream& err, absl::string_view prefix) const {
  size_t width = 0;
  for (const CommandInfo& command : commands_) {
    if (absl::StartsWith(command.name, prefix)) width = std::max(width, command.name.size());
  }
  for (const CommandInfo& command : commands_) {
    if (!absl::StartsWith(command.name, prefix)) continue;
    err << "    " << command.name << std::string(width - command.name.size() + 4, ' ')
        << command.synopsis << "\n";
  }
}

void CommandTable::PrintUsage(std::ostream& err) const {
  err << "Usage: " << program_ << " <command> [<args>]\n\n" << usage_header_;
  PrintList(err, "");
}

int CommandTable::PrintUnresolved(const std::vector<std::string>& args, std::ostream& err) const {
  if (args.empty()) {
    PrintUsage(err);
    return 1;
  }
  if (IsHelpArg(args[0]) || args[0] == "help") {
    PrintUsage(err);
    return 0;
  }
  // The longest run of leading words that begins some longer command name
  // ("entry", "api fetch", "localauthority x509").
  std::string group;
  size_t group_words = 0;
  for (size_t n = 1; n <= args.size(); ++n) {
    std::string candidate = n == 1 ? args[0] : absl::StrCat(group, " ", args[n - 1]);
    bool is_group = std::any_of(commands_.begin(), commands_.end(), [&](const CommandInfo& c) {
      return absl::StartsWith(c.name, candidate + " ");
    });
    if (!is_group) break;
    group = std::move(candidate);
    group_words = n;
  }
  if (!group.empty()) {
    bool asked_help = args.size() > group_words && IsHelpArg(args[group_words]);
    if (args.size() > group_words && !asked_help) {
      err << "Unknown command: " << group << " " << args[group_words] << "\n\n";
    }
    err << "Usage: " << program_ << " " << group << " <subcommand> [<args>]\n\nSubcommands:\n";
    PrintList(err, group + " ");
    return asked_help ? 0 : 1;
  }
  err << "Unknown command: " << args[0] << "\n\n";
  PrintUsage(err);
  return 1;
}

std::optional<int> ParseCommandFlags(FlagSet& flags, const std::vector<std::string>& args,
                                     absl::string_view synopsis, absl::string_view error_prefix,
                                     std::ostream& err) {
  absl::Status parsed = flags.Parse(args);
  if (!parsed.ok()) {
    err << parsed.message() << "\n" << flags.Usage();
    return 1;
  }
  if (flags.help_requested()) {
    err << synopsis << "\n\n" << flags.Usage();
    return 0;
  }
  if (!flags.args().empty()) {
    err << error_prefix << "unexpected argument " << GoQuote(flags.args().front())
        << " (flags must be given as -name value)\n";
    return 1;
  }
  return std::nullopt;
}

}  // namespace sigil::cli
