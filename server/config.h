#pragma once

// sigil-server settings: the YAML file (schema sigil.config.ServerConfig),
// command-line overrides, defaults, and validation, resolved into one struct.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ca/manager.h"
#include "sigil/config/server.pb.h"
#include "spiffe/id.h"

namespace sigil::server {

// Values given on the command line; empty / unset means "not given".
struct ServerFlags {
  std::string config_path;   // -config
  std::string trust_domain;  // -trustDomain
  std::string data_dir;      // -dataDir
  std::string bind_address;  // -bindAddress
  std::optional<int> bind_port;  // -serverPort
  std::string socket_path;   // -socketPath
  std::string log_level;     // -logLevel
};

inline constexpr char kDefaultSocketPath[] = "/tmp/sigil-server/private/api.sock";
inline constexpr char kDefaultBindAddress[] = "0.0.0.0";
inline constexpr int kDefaultBindPort = 8081;
inline constexpr char kDefaultDataDir[] = "./.data";

struct UpstreamDiskSettings {
  std::string cert_file_path;
  std::string key_file_path;
  std::string bundle_file_path;
};

struct ServerSettings {
  spiffe::TrustDomain trust_domain;
  std::string bind_address = kDefaultBindAddress;
  int bind_port = kDefaultBindPort;
  std::string socket_path = kDefaultSocketPath;
  std::string data_dir = kDefaultDataDir;
  // CA options (trust domain, TTLs, key types, subject, issuer).
  ca::CaOptions ca;
  // Lifetime of agent SVIDs. Default: the default X509-SVID TTL.
  absl::Duration agent_ttl;
  // spiffe_refresh_hint of the published bundle. Default: 5m.
  absl::Duration refresh_hint = absl::Minutes(5);
  std::string log_level = "INFO";
  std::string log_format = "text";
  // "disk" (default) or "memory".
  std::string key_manager = "disk";
  std::string keys_path;       // disk key manager file
  std::string datastore_path;  // RocksDB directory
  std::optional<UpstreamDiskSettings> upstream_disk;
  bool join_token_enabled = true;
  // plugins.NodeAttestor.x509pop, when configured.
  std::optional<config::X509PopServerData> x509pop;

  explicit ServerSettings(spiffe::TrustDomain td) : trust_domain(td), ca(td) {}
};

// Reads `flags.config_path` (when given), applies the flags over the file,
// fills defaults, validates. InvalidArgument listing every problem, each
// naming its key (`server.trust_domain: ...`); NotFound when the config file
// does not exist.
absl::StatusOr<ServerSettings> LoadServerSettings(const ServerFlags& flags);

// The same from an already parsed file (for tests and `validate`).
absl::StatusOr<ServerSettings> ResolveServerSettings(const config::ServerConfig& file,
                                                     const ServerFlags& flags);

}  // namespace sigil::server
