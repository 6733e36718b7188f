#include "node-agent/config.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config_util.h"
#include "common/file_util.h"
#include "node-agent/node_attestors.h"

namespace sigil::agent {
namespace {

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
  ConfigErrors errors;
  const config::AgentSection& a = file.agent();

  std::string td_text = FlagOrFile(flags.trust_domain, a.trust_domain());
  std::optional<spiffe::TrustDomain> td;
  if (td_text.empty()) {
    errors.Add("agent.trust_domain", "required (set it in the config file or with -trustDomain)");
  } else {
    auto parsed = spiffe::TrustDomain::FromString(td_text);
    if (errors.Check("agent.trust_domain", parsed.status())) td = *parsed;
  }
  // A placeholder keeps the remaining checks going so that every error is
  // reported at once; it is never returned.
  AgentSettings out(td.value_or(spiffe::TrustDomain::FromString("invalid.invalid").value()));

  out.server_address = FlagOrFile(flags.server_address, a.server_address());
  if (out.server_address.empty()) {
    errors.Add("agent.server_address", "required (set it in the config file or with -serverAddress)");
  } else if (out.server_address.find_first_of(" /\t") != std::string::npos) {
    errors.Add("agent.server_address", absl::StrCat("\"", out.server_address, "\" is not a host name or IP address"));
  }
  int64_t port = kDefaultServerPort;
  if (flags.server_port.has_value()) {
    port = *flags.server_port;
  } else if (a.has_server_port()) {
    port = a.server_port();
  }
  if (port < 1 || port > 65535) {
    errors.Add("agent.server_port", absl::StrCat(port, " is not a port (1-65535)"));
  } else {
    out.server_port = static_cast<int>(port);
  }

  out.socket_path = FlagOrFile(flags.socket_path, a.socket_path(), out.socket_path);
  errors.Check("agent.socket_path", ValidateSocketPath(out.socket_path));
  out.data_dir = FlagOrFile(flags.data_dir, a.data_dir(), out.data_dir);

  out.insecure_bootstrap = flags.insecure_bootstrap.value_or(a.insecure_bootstrap());
  out.trust_bundle_path = FlagOrFile(flags.trust_bundle_path, a.trust_bundle_path());
  if (!out.trust_bundle_path.empty()) {
    if (out.insecure_bootstrap) {
      errors.Add("agent.insecure_bootstrap", "cannot be combined with trust_bundle_path (-trustBundle); choose one");
    }
    auto pem = ReadFile(out.trust_bundle_path);
    if (errors.Check("agent.trust_bundle_path", pem.status())) {
      auto bundle = spiffe::Bundle::ParseX509Pem(out.trust_domain, *pem);
      if (!bundle.ok()) {
        errors.Add("agent.trust_bundle_path", absl::StrCat(out.trust_bundle_path, ": ", bundle.status().message()));
      } else if (bundle->x509_authorities().empty()) {
        errors.Add("agent.trust_bundle_path", absl::StrCat(out.trust_bundle_path, " holds no PEM certificate"));
      } else {
        out.trust_bundle = std::move(*bundle);
      }
    }
  }

  out.join_token = FlagOrFile(flags.join_token, a.join_token());
  out.plugins = file.plugins();
  std::vector<std::string> configured = ConfiguredNodeAttestors(file.plugins().nodeattestor());
  if (configured.size() > 1) {
    errors.Add("plugins.NodeAttestor",
               absl::StrCat("configure exactly one node attestor, found ", absl::StrJoin(configured, ", ")));
  } else if (configured.size() == 1) {
    out.node_attestor = configured.front();
    if (!IsBuiltinNodeAttestor(out.node_attestor)) {
      errors.Add(absl::StrCat("plugins.NodeAttestor.", out.node_attestor),
                 absl::StrCat("node attestor \"", out.node_attestor, "\" is not available in this build (available: ",
                              absl::StrJoin(BuiltinNodeAttestorNames(), ", "), ")"));
    } else if (!out.join_token.empty() && out.node_attestor != "join_token") {
      errors.Add("agent.join_token", absl::StrCat("a join token was given but the configured node attestor is ",
                                                  out.node_attestor, " (plugins.NodeAttestor)"));
    }
  } else if (!out.join_token.empty()) {
    out.node_attestor = "join_token";
  }

  const auto& unix_data = file.plugins().workloadattestor().unix().plugin_data();
  if (unix_data.has_discover_workload_path()) out.discover_workload_path = unix_data.discover_workload_path();
  out.workload_size_limit = unix_data.workload_size_limit();
  if (out.workload_size_limit < 0) {
    errors.Add("plugins.WorkloadAttestor.unix.plugin_data.workload_size_limit", "must not be negative");
  }

  out.log_level = FlagOrFile(flags.log_level, a.log_level(), out.log_level);
  errors.Check("agent.log_level", ValidateLogLevel(out.log_level));
  if (!a.log_format().empty()) out.log_format = a.log_format();
  errors.Check("agent.log_format", ValidateLogFormat(out.log_format));

  if (absl::Status status = errors.ToStatus(); !status.ok()) return status;
  return out;
}

absl::StatusOr<AgentSettings> LoadAgentSettings(const AgentFlags& flags) {
  config::AgentConfig file;
  if (!flags.config_path.empty()) {
    absl::Status read = ReadYamlConfigFile(flags.config_path, &file);
    if (!read.ok()) return read;
  }
  return ResolveAgentSettings(file, flags);
}

}  // namespace sigil::agent
