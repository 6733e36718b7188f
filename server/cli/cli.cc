#include "server/cli/cli.h"

#include <algorithm>
#include <iostream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "server/cli/command.h"

namespace sigil::server::cli {
namespace {

std::vector<CommandSpec> BuildCommands() {
  std::vector<CommandSpec> specs = {
      {"healthcheck", "Determines server health status", NewHealthcheckCommand,
       "Server is unhealthy: "},
      {"token generate", "Generates a join token", NewTokenGenerateCommand},
      {"entry create", "Creates registration entries", NewEntryCreateCommand},
      {"entry update", "Updates registration entries", NewEntryUpdateCommand},
      {"entry delete", "Deletes registration entries", NewEntryDeleteCommand},
      {"entry show", "Displays configured registration entries", NewEntryShowCommand},
      {"entry count", "Count registration entries", NewEntryCountCommand},
      {"agent list", "Lists attested agents and their SPIFFE IDs", NewAgentListCommand},
      {"agent show", "Shows the details of an attested agent given its SPIFFE ID",
       NewAgentShowCommand},
      {"agent count", "Count attested agents", NewAgentCountCommand},
      {"agent evict", "Evicts an attested agent given its SPIFFE ID", NewAgentEvictCommand},
      {"agent ban", "Ban an attested agent given its SPIFFE ID", NewAgentBanCommand},
      {"bundle show", "Prints server CA bundle to stdout", NewBundleShowCommand},
      {"bundle list", "Lists federated bundle data", NewBundleListCommand},
      {"bundle set", "Creates or updates bundle data", NewBundleSetCommand},
      {"bundle delete", "Deletes federated bundle data", NewBundleDeleteCommand},
      {"bundle count", "Count bundles", NewBundleCountCommand},
      {"x509 mint", "Mints an X509-SVID", NewX509MintCommand},
      {"jwt mint", "Mints a JWT-SVID", NewJwtMintCommand},
  };
  struct Authority {
    const char* kind;
    const char* label;
  };
  for (Authority a : {Authority{"x509", "X.509"}, Authority{"jwt", "JWT"}}) {
    std::string kind = a.kind;
    std::string label = a.label;
    auto add = [&](const std::string& action, const std::string& synopsis) {
      specs.push_back({absl::StrCat("localauthority ", kind, " ", action), synopsis,
                       [kind, action] { return NewLocalAuthorityCommand(kind, action); }});
    };
    add("show", absl::StrCat("Shows the local ", label, " authorities"));
    add("prepare", absl::StrCat("Prepares a new ", label, " authority for use"));
    add("activate", absl::StrCat("Activates a prepared ", label,
                                 " authority, which then signs everything this server issues"));
    add("taint", absl::StrCat("Marks the previously active ", label, " authority as tainted"));
    add("revoke", absl::StrCat("Revokes the previously active ", label,
                               " authority, removing it from the bundle"));
  }
  std::sort(specs.begin(), specs.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
  return specs;
}

bool IsHelpArg(const std::string& arg) {
  return arg == "-h" || arg == "-help" || arg == "--h" || arg == "--help";
}

// The command whose words begin `args`, preferring the longest name.
const CommandSpec* FindCommand(const std::vector<std::string>& args, size_t* words) {
  const CommandSpec* best = nullptr;
  for (const CommandSpec& spec : ClientCommands()) {
    std::vector<std::string> parts = absl::StrSplit(spec.name, ' ');
    if (parts.size() > args.size()) continue;
    if (!std::equal(parts.begin(), parts.end(), args.begin())) continue;
    if (best == nullptr || parts.size() > *words) {
      best = &spec;
      *words = parts.size();
    }
  }
  return best;
}

void PrintCommandList(std::ostream& err, const std::string& prefix) {
  size_t width = 0;
  for (const CommandSpec& spec : ClientCommands()) {
    if (absl::StartsWith(spec.name, prefix)) width = std::max(width, spec.name.size());
  }
  for (const CommandSpec& spec : ClientCommands()) {
    if (!absl::StartsWith(spec.name, prefix)) continue;
    err << "    " << spec.name << std::string(width - spec.name.size() + 4, ' ') << spec.synopsis
        << "\n";
  }
}

void PrintUsage(std::ostream& err) {
  err << "Usage: sigil-server <command> [<args>]\n\n"
      << "Server commands:\n"
      << "    run                 Runs the server\n"
      << "    validate            Validates a server configuration file\n\n"
      << "Client commands (they talk to a running server over -socketPath):\n";
  PrintCommandList(err, "");
}

}  // namespace

const std::vector<CommandSpec>& ClientCommands() {
  static const std::vector<CommandSpec>* const kCommands =
      new std::vector<CommandSpec>(BuildCommands());
  return *kCommands;
}

absl::StatusOr<std::string> ReadInput(const std::string& path, std::istream& in) {
  if (path.empty() || path == "-") {
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return absl::InvalidArgumentError("cannot read standard input");
    return data;
  }
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", path, ": ", data.status().message()));
  }
  return data;
}

int RunCommandLine(const std::vector<std::string>& args, const CommandEnv& env) {
  std::ostream& err = *env.err;
  if (args.empty()) {
    PrintUsage(err);
    return 1;
  }
  if (IsHelpArg(args[0]) || args[0] == "help") {
    PrintUsage(err);
    return 0;
  }
  size_t words = 0;
  const CommandSpec* spec = FindCommand(args, &words);
  if (spec == nullptr) {
    // "entry" alone, or "entry frobnicate": list what the group offers.
    std::string group = args[0];
    if (args.size() > 1 && args[0] == "localauthority" && (args[1] == "x509" || args[1] == "jwt")) {
      group = absl::StrCat(args[0], " ", args[1]);
    }
    const size_t group_words = static_cast<size_t>(std::count(group.begin(), group.end(), ' ')) + 1;
    bool is_group = std::any_of(
        ClientCommands().begin(), ClientCommands().end(),
        [&](const CommandSpec& s) { return absl::StartsWith(s.name, group + " "); });
    if (is_group) {
      bool asked_help = args.size() > group_words && IsHelpArg(args[group_words]);
      if (args.size() > group_words && !asked_help) {
        err << "Unknown command: " << group << " " << args[group_words] << "\n\n";
      }
      err << "Usage: sigil-server " << group << " <subcommand> [<args>]\n\nSubcommands:\n";
      PrintCommandList(err, group + " ");
      return asked_help ? 0 : 1;
    }
    err << "Unknown command: " << args[0] << "\n\n";
    PrintUsage(err);
    return 1;
  }

  std::unique_ptr<Command> command = spec->make();
  FlagSet flags(spec->name);
  std::string socket_path;
  OutputFormat format = OutputFormat::kPretty;
  flags.String("socketPath", &socket_path, kDefaultSocketPath,
               "Path to the Sigil server API socket");
  flags.Func("output", "Desired output format (pretty, json); default: pretty.", "",
             [&format](const std::string& value) -> absl::Status {
               absl::StatusOr<OutputFormat> parsed = ParseOutputFormat(value);
               if (!parsed.ok()) {
                 return absl::InvalidArgumentError(
                     absl::StrCat("bad formatter flag: ", parsed.status().message()));
               }
               format = *parsed;
               return absl::OkStatus();
             });
  command->AddFlags(flags);

  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(words), args.end());
  absl::Status parsed = flags.Parse(rest);
  if (!parsed.ok()) {
    err << parsed.message() << "\n" << flags.Usage();
    return 1;
  }
  if (flags.help_requested()) {
    err << spec->synopsis << "\n\n" << flags.Usage();
    return 0;
  }
  if (!flags.args().empty()) {
    err << "Error: unexpected argument " << GoQuote(flags.args().front())
        << " (flags must be given as -name value)\n";
    return 1;
  }
  // As SPIRE does, an empty -socketPath means the default.
  if (socket_path.empty()) socket_path = kDefaultSocketPath;

  ServerClient client(socket_path);
  CommandContext ctx(env, format, &client);
  absl::Status status = command->Run(flags, ctx);
  if (!status.ok()) {
    err << spec->error_prefix << status.message() << "\n";
    return 1;
  }
  return 0;
}

int RunClientCommand(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                     std::ostream& err) {
  CommandEnv env;
  env.in = &in;
  env.out = &out;
  env.err = &err;
  env.clock = RealClock::Get();
  int code = RunCommandLine(args, env);
  out.flush();
  err.flush();
  return code;
}

int RunClientCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunClientCommand(args, std::cin, out, err);
}

bool IsClientCommand(const std::string& name) {
  for (const CommandSpec& spec : ClientCommands()) {
    std::string first = spec.name.substr(0, spec.name.find(' '));
    if (first == name) return true;
  }
  return false;
}

}  // namespace sigil::server::cli
