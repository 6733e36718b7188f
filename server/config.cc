#include "server/config.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config_util.h"
#include "spiffe/crypto/key.h"

namespace sigil::server {

absl::StatusOr<ServerSettings> ResolveServerSettings(const config::ServerConfig& file,
                                                     const ServerFlags& flags) {
  ConfigErrors errors;
  const config::ServerSection& s = file.server();

  std::string td_text = FlagOrFile(flags.trust_domain, s.trust_domain());
  std::optional<spiffe::TrustDomain> td;
  if (td_text.empty()) {
    errors.Add("server.trust_domain", "required (set it in the config file or with -trustDomain)");
  } else {
    auto parsed = spiffe::TrustDomain::FromString(td_text);
    if (errors.Check("server.trust_domain", parsed.status())) td = *parsed;
  }
  // A placeholder keeps the remaining checks going so that every error is
  // reported at once; it is never returned.
  ServerSettings out(td.value_or(spiffe::TrustDomain::FromString("invalid.invalid").value()));

  out.bind_address = FlagOrFile(flags.bind_address, s.bind_address(), out.bind_address);
  if (flags.bind_port.has_value()) {
    out.bind_port = *flags.bind_port;
  } else if (s.has_bind_port()) {
    out.bind_port = s.bind_port();
  }
  if (out.bind_port < 0 || out.bind_port > 65535) {
    errors.Add("server.bind_port", absl::StrCat(out.bind_port, " is not a port (0-65535)"));
  }
  out.socket_path = FlagOrFile(flags.socket_path, s.socket_path(), out.socket_path);
  errors.Check("server.socket_path", ValidateSocketPath(out.socket_path));
  out.data_dir = FlagOrFile(flags.data_dir, s.data_dir(), out.data_dir);

  if (s.has_ca_ttl()) out.ca.ca_ttl = DurationFromProto(s.ca_ttl());
  if (s.has_default_x509_svid_ttl()) out.ca.default_x509_svid_ttl = DurationFromProto(s.default_x509_svid_ttl());
  if (s.has_default_jwt_svid_ttl()) out.ca.default_jwt_svid_ttl = DurationFromProto(s.default_jwt_svid_ttl());
  if (out.ca.ca_ttl < absl::Minutes(1)) {
    errors.Add("server.ca_ttl", "must be at least 1m");
  }
  if (out.ca.default_x509_svid_ttl <= absl::ZeroDuration()) {
    errors.Add("server.default_x509_svid_ttl", "must be positive");
  }
  if (out.ca.default_jwt_svid_ttl <= absl::ZeroDuration()) {
    errors.Add("server.default_jwt_svid_ttl", "must be positive");
  }
  out.agent_ttl = s.has_agent_ttl() ? DurationFromProto(s.agent_ttl()) : out.ca.default_x509_svid_ttl;
  if (out.agent_ttl <= absl::ZeroDuration()) {
    errors.Add("server.agent_ttl", "must be positive");
  }
  if (s.has_refresh_hint()) out.refresh_hint = DurationFromProto(s.refresh_hint());
  if (out.refresh_hint < absl::Seconds(1)) {
    errors.Add("server.refresh_hint", "must be at least 1s");
  }
  if (!s.ca_key_type().empty()) {
    auto kt = crypto::ParseKeyType(s.ca_key_type());
    if (errors.Check("server.ca_key_type", kt.status())) out.ca.ca_key_type = *kt;
  }
  if (!s.jwt_key_type().empty()) {
    auto kt = crypto::ParseKeyType(s.jwt_key_type());
    if (errors.Check("server.jwt_key_type", kt.status())) out.ca.jwt_key_type = *kt;
  }
  out.ca.jwt_issuer = s.jwt_issuer();
  if (s.has_ca_subject()) {
    crypto::DistinguishedName dn;
    for (const auto& c : s.ca_subject().country()) {
      if (c.size() != 2) {
        errors.Add("server.ca_subject.country", absl::StrCat("\"", c, "\" is not a two-letter code"));
      }
      dn.emplace_back(crypto::NameAttribute::kCountry, c);
    }
    for (const auto& o : s.ca_subject().organization()) {
      dn.emplace_back(crypto::NameAttribute::kOrganization, o);
    }
    if (!s.ca_subject().common_name().empty()) {
      dn.emplace_back(crypto::NameAttribute::kCommonName, s.ca_subject().common_name());
    }
    if (dn.empty()) {
      errors.Add("server.ca_subject", "must name at least one attribute");
    }
    out.ca.ca_subject = dn;
  }

  out.log_level = FlagOrFile(flags.log_level, s.log_level(), out.log_level);
  errors.Check("server.log_level", ValidateLogLevel(out.log_level));
  if (!s.log_format().empty()) out.log_format = s.log_format();
  errors.Check("server.log_format", ValidateLogFormat(out.log_format));

  const config::ServerPlugins& p = file.plugins();
  out.datastore_path = absl::StrCat(out.data_dir, "/datastore");
  if (p.datastore().has_rocksdb() && !p.datastore().rocksdb().plugin_data().directory().empty()) {
    out.datastore_path = p.datastore().rocksdb().plugin_data().directory();
  }
  out.keys_path = absl::StrCat(out.data_dir, "/keys.json");
  if (p.keymanager().has_memory() && p.keymanager().has_disk()) {
    errors.Add("plugins.KeyManager", "configure exactly one of memory, disk");
  } else if (p.keymanager().has_memory()) {
    out.key_manager = "memory";
  } else if (p.keymanager().has_disk() && !p.keymanager().disk().plugin_data().keys_path().empty()) {
    out.keys_path = p.keymanager().disk().plugin_data().keys_path();
  }
  if (p.has_nodeattestor()) {
    out.join_token_enabled = p.nodeattestor().has_join_token();
  }
  if (p.nodeattestor().has_x509pop()) {
    const auto& x = p.nodeattestor().x509pop().plugin_data();
    if (x.ca_bundle_path().empty() == (x.ca_bundle_paths_size() == 0)) {
      errors.Add("plugins.NodeAttestor.x509pop.plugin_data", "set exactly one of ca_bundle_path, ca_bundle_paths");
    }
    out.x509pop = x;
  }
  if (p.upstreamauthority().has_disk()) {
    const auto& d = p.upstreamauthority().disk().plugin_data();
    if (d.cert_file_path().empty()) {
      errors.Add("plugins.UpstreamAuthority.disk.plugin_data.cert_file_path", "required");
    }
    if (d.key_file_path().empty()) {
      errors.Add("plugins.UpstreamAuthority.disk.plugin_data.key_file_path", "required");
    }
    out.upstream_disk = UpstreamDiskSettings{d.cert_file_path(), d.key_file_path(), d.bundle_file_path()};
  }

  if (absl::Status status = errors.ToStatus(); !status.ok()) return status;
  return out;
}

absl::StatusOr<ServerSettings> LoadServerSettings(const ServerFlags& flags) {
  config::ServerConfig file;
  if (!flags.config_path.empty()) {
    absl::Status read = ReadYamlConfigFile(flags.config_path, &file);
    if (!read.ok()) return read;
  }
  return ResolveServerSettings(file, flags);
}

}  // namespace sigil::server
