#include "node-agent/config.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/yaml_proto.h"
#include "node-agent/node_attestors.h"

namespace sigil::agent {
namespace {

bool IsValidLogLevel(const std::string& level) {
  for (const char* l : {"DEBUG", "INFO", "WARN", "ERROR", "debug", "info", "warn", "error"}) {
    if (level == l) return true;
  }
  return false;
}

// Names of the node attestors present in plugins.NodeAttestor, in field order.
std::vector<std::string> ConfiguredNodeAttestors(const config::NodeAttestorAgentPlugins& p) {
  std::vector<std::string> names;
  const auto* reflection = p.GetReflection();
  const auto* descriptor = p.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    if (reflection->HasField(p, field)) names.push_back(field->name());
  }
  return names;
}

}  // namespace

std::string AgentSettings::ServerTarget() const {
  if (server_address.find(':') != std::string::npos && server_address.front() != '[') {
    return absl::StrCat("[", server_address, "]:", server_port);
  }
  return absl::StrCat(server_address, ":", server_port);
}

absl::StatusOr<AgentSettings> ResolveAgentSettings(const config::AgentConfig& file, const AgentFlags& flags) {
  std::vector<std::string> errors;
  const config::AgentSection& a = file.agent();

  std::string td_text = flags.trust_domain.empty() ? a.trust_domain() : flags.trust_domain;
  std::optional<spiffe::TrustDomain> td;
  if (td_text.empty()) {
    errors.push_back("agent.trust_domain: required (set it in the config file or with -trustDomain)");
  } else {
    auto parsed = spiffe::TrustDomain::FromString(td_text);
    if (!parsed.ok()) {
      errors.push_back(absl::StrCat("agent.trust_domain: ", parsed.status().message()));
    } else {
      td = *parsed;
    }
  }
  // A placeholder keeps the remaining checks going so that every error is
  // reported at once; it is never returned.
  AgentSettings out(td.value_or(spiffe::TrustDomain::FromString("invalid.invalid").value()));

  out.server_address = flags.server_address.empty() ? a.server_address() : flags.server_address;
  if (out.server_address.empty()) {
    errors.push_back("agent.server_address: required (set it in the config file or with -serverAddress)");
  } else if (out.server_address.find_first_of(" /\t") != std::string::npos) {
    errors.push_back(absl::StrCat("agent.server_address: \"", out.server_address,
                                  "\" is not a host name or IP address"));
  }
  int64_t port = kDefaultServerPort;
  if (flags.server_port.has_value()) {
    port = *flags.server_port;
  } else if (a.has_server_port()) {
    port = a.server_port();
  }
  if (port < 1 || port > 65535) {
    errors.push_back(absl::StrCat("agent.server_port: ", port, " is not a port (1-65535)"));
  } else {
    out.server_port = static_cast<int>(port);
  }

  if (!flags.socket_path.empty()) {
    out.socket_path = flags.socket_path;
  } else if (!a.socket_path().empty()) {
    out.socket_path = a.socket_path();
  }
  if (out.socket_path.size() >= 108) {
    errors.push_back(absl::StrCat("agent.socket_path: longer than a Unix socket path may be (107 bytes): ",
                                  out.socket_path));
  }
  if (!flags.data_dir.empty()) {
    out.data_dir = flags.data_dir;
  } else if (!a.data_dir().empty()) {
    out.data_dir = a.data_dir();
  }

  out.insecure_bootstrap = flags.insecure_bootstrap.value_or(a.insecure_bootstrap());
  out.trust_bundle_path = flags.trust_bundle_path.empty() ? a.trust_bundle_path() : flags.trust_bundle_path;
  if (!out.trust_bundle_path.empty()) {
    if (out.insecure_bootstrap) {
      errors.push_back(
          "agent.insecure_bootstrap: cannot be combined with trust_bundle_path (-trustBundle); choose one");
    }
    auto pem = ReadFile(out.trust_bundle_path);
    if (!pem.ok()) {
      errors.push_back(absl::StrCat("agent.trust_bundle_path: ", pem.status().message()));
    } else {
      auto bundle = spiffe::Bundle::ParseX509Pem(out.trust_domain, *pem);
      if (!bundle.ok()) {
        errors.push_back(absl::StrCat("agent.trust_bundle_path: ", out.trust_bundle_path, ": ",
                                      bundle.status().message()));
      } else if (bundle->x509_authorities().empty()) {
        errors.push_back(absl::StrCat("agent.trust_bundle_path: ", out.trust_bundle_path,
                                      " holds no PEM certificate"));
      } else {
        out.trust_bundle = std::move(*bundle);
      }
    }
  }

  out.join_token = flags.join_token.empty() ? a.join_token() : flags.join_token;
  out.plugins = file.plugins();
  std::vector<std::string> configured = ConfiguredNodeAttestors(file.plugins().nodeattestor());
  if (configured.size() > 1) {
    errors.push_back(absl::StrCat("plugins.NodeAttestor: configure exactly one node attestor, found ",
                                  absl::StrJoin(configured, ", ")));
  } else if (configured.size() == 1) {
    out.node_attestor = configured.front();
    if (!IsBuiltinNodeAttestor(out.node_attestor)) {
      errors.push_back(absl::StrCat("plugins.NodeAttestor.", out.node_attestor, ": node attestor \"",
                                    out.node_attestor, "\" is not available in this build (available: ",
                                    absl::StrJoin(BuiltinNodeAttestorNames(), ", "), ")"));
    } else if (!out.join_token.empty() && out.node_attestor != "join_token") {
      errors.push_back(absl::StrCat("agent.join_token: a join token was given but the configured node attestor is ",
                                    out.node_attestor, " (plugins.NodeAttestor)"));
    }
  } else if (!out.join_token.empty()) {
    out.node_attestor = "join_token";
  }

  const auto& unix_data = file.plugins().workloadattestor().unix().plugin_data();
  if (unix_data.has_discover_workload_path()) out.discover_workload_path = unix_data.discover_workload_path();
  out.workload_size_limit = unix_data.workload_size_limit();
  if (out.workload_size_limit < 0) {
    errors.push_back("plugins.WorkloadAttestor.unix.plugin_data.workload_size_limit: must not be negative");
  }

  std::string level = flags.log_level.empty() ? a.log_level() : flags.log_level;
  if (!level.empty()) {
    if (!IsValidLogLevel(level)) {
      errors.push_back(absl::StrCat("agent.log_level: unknown level \"", level,
                                    "\" (one of DEBUG, INFO, WARN, ERROR)"));
    }
    out.log_level = level;
  }
  if (!a.log_format().empty()) {
    if (a.log_format() != "text" && a.log_format() != "json") {
      errors.push_back(absl::StrCat("agent.log_format: unknown format \"", a.log_format(), "\" (one of text, json)"));
    }
    out.log_format = a.log_format();
  }

  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return out;
}

absl::StatusOr<AgentSettings> LoadAgentSettings(const AgentFlags& flags) {
  config::AgentConfig file;
  if (!flags.config_path.empty()) {
    auto text = ReadFile(flags.config_path);
    if (!text.ok()) return text.status();
    absl::Status s = MergeYamlIntoProto(*text, &file);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("config ", flags.config_path, ":\n", s.message()));
    }
  }
  return ResolveAgentSettings(file, flags);
}

}  // namespace sigil::agent
