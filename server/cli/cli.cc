#include "server/cli/cli.h"

#include <iostream>
#include <iterator>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "server/cli/command.h"

namespace sigil::server::cli {
namespace {

std::vector<CommandSpec> BuildCommands() {
  std::vector<CommandSpec> specs = {
      {"healthcheck", "Determines server health status",
       ::sigil::cli::NewHealthcheckCommand<CommandContext>, "Server is unhealthy: "},
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
  return specs;
}

// The top-level usage above the list of client commands.
constexpr char kUsageHeader[] =
    "Server commands:\n"
    "    run                 Runs the server\n"
    "    validate            Validates a server configuration file\n\n"
    "Client commands (they talk to a running server over -socketPath):\n";

// Every client command, sorted by name, for dispatch and usage text.
const ::sigil::cli::CommandList<CommandSpec>& Commands() {
  static const auto* const kCommands =
      new ::sigil::cli::CommandList<CommandSpec>("sigil-server", kUsageHeader, BuildCommands());
  return *kCommands;
}

}  // namespace

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
  size_t words = 0;
  const CommandSpec* found = Commands().Find(args, &words);
  if (found == nullptr) return Commands().table().PrintUnresolved(args, err);
  const CommandSpec& spec = *found;

  std::unique_ptr<Command> command = spec.make();
  FlagSet flags(spec.name);
  std::string socket_path;
  OutputFormat format = OutputFormat::kPretty;
  flags.String("socketPath", &socket_path, kDefaultSocketPath,
               "Path to the Sigil server API socket");
  ::sigil::cli::AddOutputFlag(flags, &format);
  command->AddFlags(flags);

  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(words), args.end());
  if (std::optional<int> code =
          ::sigil::cli::ParseCommandFlags(flags, rest, spec.synopsis, "Error: ", err)) {
    return *code;
  }
  // As SPIRE does, an empty -socketPath means the default.
  if (socket_path.empty()) socket_path = kDefaultSocketPath;

  ServerClient client(socket_path);
  CommandContext ctx(env, format, &client);
  absl::Status status = command->Run(flags, ctx);
  if (!status.ok()) {
    err << spec.error_prefix << status.message() << "\n";
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

bool IsClientCommand(const std::string& name) { return Commands().table().IsFirstWord(name); }

}  // namespace sigil::server::cli
