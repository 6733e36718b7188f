// sigil-server: `run` and `validate` start or check the server; every other
// command is a client of the admin API (server/cli/).

#include <signal.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/cli_flags.h"
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

// Parses run/validate flags and resolves settings; prints errors itself.
absl::StatusOr<ServerSettings> ParseSettings(const std::string& command, const std::vector<std::string>& args,
                                             bool* help) {
  sigil::cli::FlagSet flags(command);
  ServerFlags server_flags;
  int64_t port = kDefaultBindPort;
  RegisterServerFlags(&flags, &server_flags, &port);
  absl::Status parsed = flags.Parse(args);
  if (!parsed.ok() || flags.help_requested()) {
    *help = flags.help_requested();
    std::cerr << (parsed.ok() ? "" : absl::StrCat(parsed.message(), "\n")) << flags.Usage();
    return parsed.ok() ? absl::CancelledError("help") : parsed;
  }
  if (!flags.args().empty()) {
    std::cerr << "unexpected argument: " << flags.args().front() << "\n" << flags.Usage();
    return absl::InvalidArgumentError("unexpected argument");
  }
  if (flags.IsSet("serverPort")) {
    if (port < 0 || port > 65535) {
      std::cerr << "Error: -serverPort " << port << " is not a port (0-65535)\n";
      return absl::InvalidArgumentError("bad port");
    }
    server_flags.bind_port = static_cast<int>(port);
  }
  auto settings = LoadServerSettings(server_flags);
  if (!settings.ok()) std::cerr << "Error: " << settings.status().message() << "\n";
  return settings;
}

int Run(const std::vector<std::string>& args) {
  // Signals are taken by a dedicated thread, so every thread started from
  // here on inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  bool help = false;
  auto settings = ParseSettings("run", args, &help);
  if (!settings.ok()) return help ? 0 : 1;
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
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    (*server)->Shutdown();
  });
  (*server)->Wait();
  waiter.join();
  return 0;
}

int Validate(const std::vector<std::string>& args) {
  bool help = false;
  auto settings = ParseSettings("validate", args, &help);
  if (!settings.ok()) return help ? 0 : 1;
  std::cout << "Configuration is valid.\n";
  return 0;
}

}  // namespace
}  // namespace sigil::server

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::cerr << sigil::server::kUsage;
    return args.empty() ? 1 : 0;
  }
  std::string command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "run") return sigil::server::Run(rest);
  if (command == "validate") return sigil::server::Validate(rest);
  if (!sigil::server::cli::IsClientCommand(command)) {
    std::cerr << "Unknown command \"" << command << "\"\n\n" << sigil::server::kUsage;
    return 1;
  }
  return sigil::server::cli::RunClientCommand(args, std::cout, std::cerr);
}
