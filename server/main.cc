// sigil-server: `run` and `validate` start or check the server; every other
// command is a client of the admin API (server/cli/).

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/cli_flags.h"
#include "common/daemon.h"
#include "common/grpc_log.h"
#include "common/logging.h"
#include "server/cli/cli.h"
#include "server/config.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

namespace sigil::server {
namespace {

constexpr char kUsage[] = R"(Usage: sigil-server <command> [flags]

Server:
  run            Runs the server
  validate       Validates a server configuration file
  healthcheck    Determines server health status

Administration (over the admin socket, -socketPath):
  agent          list | show | count | evict | ban
  bundle         show | list | set | delete
  entry          create | update | delete | show | count
  jwt            mint
  localauthority x509|jwt show | prepare | activate | taint | revoke
  token          generate
  x509           mint

Run 'sigil-server <command> -h' for a command's flags.
)";

void RegisterServerFlags(sigil::cli::FlagSet* flags, ServerFlags* out, int64_t* port) {
  flags->String("config", &out->config_path, "", "Path to a sigil-server YAML config file");
  flags->String("trustDomain", &out->trust_domain, "", "The trust domain that this server belongs to");
  flags->String("dataDir", &out->data_dir, "", "A directory the server can use for its runtime data");
  flags->String("bindAddress", &out->bind_address, "", "IP address or DNS name of the sigil-server");
  flags->Int("serverPort", port, kDefaultBindPort, "Port number of the sigil-server");
  flags->String("socketPath", &out->socket_path, "", "Path to bind the sigil-server admin API socket to");
  flags->String("logLevel", &out->log_level, "", "DEBUG, INFO, WARN or ERROR");
}

// Parses run/validate flags and resolves settings. When that fails, or only
// help was asked for, prints why and returns the exit code in `*exit_code`.
std::optional<ServerSettings> ParseSettings(const std::string& command, const std::vector<std::string>& args,
                                            int* exit_code) {
  sigil::cli::FlagSet flags(command);
  ServerFlags server_flags;
  int64_t port = kDefaultBindPort;
  RegisterServerFlags(&flags, &server_flags, &port);
  auto resolve = [&]() -> absl::StatusOr<ServerSettings> {
    if (flags.IsSet("serverPort")) {
      if (port < 0 || port > 65535) {
        return absl::InvalidArgumentError(absl::StrCat("-serverPort ", port, " is not a port (0-65535)"));
      }
      server_flags.bind_port = static_cast<int>(port);
    }
    return LoadServerSettings(server_flags);
  };
  return ParseDaemonSettings<ServerSettings>(flags, args, resolve, std::cerr, exit_code);
}

int Run(const std::vector<std::string>& args) {
  BlockShutdownSignals();
  int exit_code;
  std::optional<ServerSettings> settings = ParseSettings("run", args, &exit_code);
  if (!settings.has_value()) return exit_code;
  if (absl::Status s = InitLogging(settings->log_level, settings->log_format, "sigil-server"); !s.ok()) {
    std::cerr << "Error: " << s.message() << "\n";
    return 1;
  }
  RouteGrpcLogsToSpdlog();
  auto server = Server::Start(*settings, RealClock::Get());
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().ToString());
    return 1;
  }
  ShutdownSignalThread signals([&] { (*server)->Shutdown(); });
  (*server)->Wait();
  signals.Stop();
  return 0;
}

int Validate(const std::vector<std::string>& args) {
  int exit_code;
  if (!ParseSettings("validate", args, &exit_code).has_value()) return exit_code;
  std::cout << "Configuration is valid.\n";
  return 0;
}

}  // namespace
}  // namespace sigil::server

int main(int argc, char** argv) {
  sigil::DaemonCommands commands;
  commands.usage = sigil::server::kUsage;
  commands.run = sigil::server::Run;
  commands.validate = sigil::server::Validate;
  commands.is_client = sigil::server::cli::IsClientCommand;
  commands.run_client = [](const std::vector<std::string>& args) {
    return sigil::server::cli::RunClientCommand(args, std::cout, std::cerr);
  };
  return sigil::RunDaemonMain(std::vector<std::string>(argv + 1, argv + argc), commands, std::cerr);
}
