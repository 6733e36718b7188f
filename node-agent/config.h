#pragma once

// sigil-agent settings: the YAML file (schema sigil.config.AgentConfig, key
// names as spire-agent's), command-line overrides (spire-agent's flags),
// defaults and validation, resolved into one struct.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "sigil/config/agent.pb.h"
#include "spiffe/bundle.h"
#include "spiffe/id.h"

namespace sigil::agent {

// Values given on the command line; empty / unset means "not given".
struct AgentFlags {
  std::string config_path;                // -config
  std::string trust_domain;               // -trustDomain
  std::string server_address;             // -serverAddress
  std::optional<int64_t> server_port;     // -serverPort
  std::string socket_path;                // -socketPath
  std::string data_dir;                   // -dataDir
  std::string join_token;                 // -joinToken
  std::string trust_bundle_path;          // -trustBundle
  std::optional<bool> insecure_bootstrap; // -insecureBootstrap
  std::string log_level;                  // -logLevel
};

inline constexpr char kDefaultAgentSocketPath[] = "/tmp/sigil-agent/public/api.sock";
inline constexpr int kDefaultServerPort = 8081;
inline constexpr char kDefaultAgentDataDir[] = "./.data";

struct AgentSettings {
  spiffe::TrustDomain trust_domain;
  // Host name or IP address of the server, and its port.
  std::string server_address;
  int server_port = kDefaultServerPort;
  // Workload API socket.
  std::string socket_path = kDefaultAgentSocketPath;
  // Holds agent_svid.pem, agent_svid.key and bundle.pem.
  std::string data_dir = kDefaultAgentDataDir;
  // The bootstrap trust bundle (trust_bundle_path), parsed; empty when none
  // was configured.
  std::string trust_bundle_path;
  std::optional<spiffe::Bundle> trust_bundle;
  bool insecure_bootstrap = false;
  std::string join_token;
  // The configured node attestor ("join_token", ...); empty when none is
  // configured, which is fine as long as persisted agent state exists.
  std::string node_attestor;
  // The plugins section as written (node attestors read their plugin_data).
  config::AgentPlugins plugins;
  // unix workload attestor (always on): SPIRE's discover_workload_path and
  // workload_size_limit. Defaults: true, 0 (no limit).
  bool discover_workload_path = true;
  int64_t workload_size_limit = 0;
  std::string log_level = "INFO";
  std::string log_format = "text";

  explicit AgentSettings(spiffe::TrustDomain td) : trust_domain(std::move(td)) {}

  // "host:port" for gRPC ("[v6addr]:port" for IPv6 literals).
  std::string ServerTarget() const;
};

// Reads `flags.config_path` (when given), applies the flags over the file,
// fills defaults, validates. InvalidArgument listing every problem, one per
// line, each naming its key (`agent.server_port: ...`); NotFound when the
// config file does not exist.
//
// A trust bundle (or insecure_bootstrap) and a node attestor are needed only
// to attest, i.e. when data_dir holds no agent state; that is checked when
// the agent starts (Agent::Start), not here. trust_bundle_path, when given,
// must name a readable PEM file holding at least one certificate.
absl::StatusOr<AgentSettings> LoadAgentSettings(const AgentFlags& flags);

// The same from an already parsed file (for tests and `validate`).
absl::StatusOr<AgentSettings> ResolveAgentSettings(const config::AgentConfig& file, const AgentFlags& flags);

}  // namespace sigil::agent
