#include "server/config.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/yaml_proto.h"
#include "spiffe/crypto/key.h"

namespace sigil::server {
namespace {

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

bool IsValidLogLevel(const std::string& level) {
  for (const char* l : {"DEBUG", "INFO", "WARN", "ERROR", "debug", "info", "warn", "error"}) {
    if (level == l) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<ServerSettings> ResolveServerSettings(const config::ServerConfig& file,
                                                     const ServerFlags& flags) {
  std::vector<std::string> errors;
  const config::ServerSection& s = file.server();

  std::string td_text = flags.trust_domain.empty() ? s.trust_domain() : flags.trust_domain;
  std::optional<spiffe::TrustDomain> td;
  if (td_text.empty()) {
    errors.push_back("server.trust_domain: required (set it in the config file or with -trustDomain)");
  } else {
    auto parsed = spiffe::TrustDomain::FromString(td_text);
    if (!parsed.ok()) {
      errors.push_back(absl::StrCat("server.trust_domain: ", parsed.status().message()));
    } else {
      td = *parsed;
    }
  }
  // A placeholder keeps the remaining checks going so that every error is
  // reported at once; it is never returned.
  ServerSettings out(td.value_or(spiffe::TrustDomain::FromString("invalid.invalid").value()));

  if (!flags.bind_address.empty()) {
    out.bind_address = flags.bind_address;
  } else if (!s.bind_address().empty()) {
    out.bind_address = s.bind_address();
  }
  if (flags.bind_port.has_value()) {
    out.bind_port = *flags.bind_port;
  } else if (s.has_bind_port()) {
    out.bind_port = s.bind_port();
  }
  if (out.bind_port < 0 || out.bind_port > 65535) {
    errors.push_back(absl::StrCat("server.bind_port: ", out.bind_port, " is not a port (0-65535)"));
  }
  if (!flags.socket_path.empty()) {
    out.socket_path = flags.socket_path;
  } else if (!s.socket_path().empty()) {
    out.socket_path = s.socket_path();
  }
  if (out.socket_path.size() >= 108) {
    errors.push_back(absl::StrCat("server.socket_path: longer than a Unix socket path may be (107 bytes): ",
                                  out.socket_path));
  }
  if (!flags.data_dir.empty()) {
    out.data_dir = flags.data_dir;
  } else if (!s.data_dir().empty()) {
    out.data_dir = s.data_dir();
  }

  if (s.has_ca_ttl()) out.ca.ca_ttl = ToDuration(s.ca_ttl());
  if (s.has_default_x509_svid_ttl()) out.ca.default_x509_svid_ttl = ToDuration(s.default_x509_svid_ttl());
  if (s.has_default_jwt_svid_ttl()) out.ca.default_jwt_svid_ttl = ToDuration(s.default_jwt_svid_ttl());
  if (out.ca.ca_ttl < absl::Minutes(1)) {
    errors.push_back("server.ca_ttl: must be at least 1m");
  }
  if (out.ca.default_x509_svid_ttl <= absl::ZeroDuration()) {
    errors.push_back("server.default_x509_svid_ttl: must be positive");
  }
  if (out.ca.default_jwt_svid_ttl <= absl::ZeroDuration()) {
    errors.push_back("server.default_jwt_svid_ttl: must be positive");
  }
  out.agent_ttl = s.has_agent_ttl() ? ToDuration(s.agent_ttl()) : out.ca.default_x509_svid_ttl;
  if (out.agent_ttl <= absl::ZeroDuration()) {
    errors.push_back("server.agent_ttl: must be positive");
  }
  if (s.has_refresh_hint()) out.refresh_hint = ToDuration(s.refresh_hint());
  if (out.refresh_hint < absl::Seconds(1)) {
    errors.push_back("server.refresh_hint: must be at least 1s");
  }
  if (!s.ca_key_type().empty()) {
    auto kt = crypto::ParseKeyType(s.ca_key_type());
    if (!kt.ok()) {
      errors.push_back(absl::StrCat("server.ca_key_type: ", kt.status().message()));
    } else {
      out.ca.ca_key_type = *kt;
    }
  }
  if (!s.jwt_key_type().empty()) {
    auto kt = crypto::ParseKeyType(s.jwt_key_type());
    if (!kt.ok()) {
      errors.push_back(absl::StrCat("server.jwt_key_type: ", kt.status().message()));
    } else {
      out.ca.jwt_key_type = *kt;
    }
  }
  out.ca.jwt_issuer = s.jwt_issuer();
  if (s.has_ca_subject()) {
    crypto::DistinguishedName dn;
    for (const auto& c : s.ca_subject().country()) {
      if (c.size() != 2) {
        errors.push_back(absl::StrCat("server.ca_subject.country: \"", c, "\" is not a two-letter code"));
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
      errors.push_back("server.ca_subject: must name at least one attribute");
    }
    out.ca.ca_subject = dn;
  }

  std::string level = flags.log_level.empty() ? s.log_level() : flags.log_level;
  if (!level.empty()) {
    if (!IsValidLogLevel(level)) {
      errors.push_back(absl::StrCat("server.log_level: unknown level \"", level,
                                    "\" (one of DEBUG, INFO, WARN, ERROR)"));
    }
    out.log_level = level;
  }
  if (!s.log_format().empty()) {
    if (s.log_format() != "text" && s.log_format() != "json") {
      errors.push_back(absl::StrCat("server.log_format: unknown format \"", s.log_format(),
                                    "\" (one of text, json)"));
    }
    out.log_format = s.log_format();
  }

  const config::ServerPlugins& p = file.plugins();
  out.datastore_path = absl::StrCat(out.data_dir, "/datastore");
  if (p.datastore().has_rocksdb() && !p.datastore().rocksdb().plugin_data().directory().empty()) {
    out.datastore_path = p.datastore().rocksdb().plugin_data().directory();
  }
  out.keys_path = absl::StrCat(out.data_dir, "/keys.json");
  if (p.keymanager().has_memory() && p.keymanager().has_disk()) {
    errors.push_back("plugins.KeyManager: configure exactly one of memory, disk");
  } else if (p.keymanager().has_memory()) {
    out.key_manager = "memory";
  } else if (p.keymanager().has_disk() && !p.keymanager().disk().plugin_data().keys_path().empty()) {
    out.keys_path = p.keymanager().disk().plugin_data().keys_path();
  }
  if (p.nodeattestor().ByteSizeLong() > 0 || p.has_nodeattestor()) {
    out.join_token_enabled = p.nodeattestor().has_join_token();
  }
  if (p.nodeattestor().has_x509pop()) {
    const auto& x = p.nodeattestor().x509pop().plugin_data();
    if (x.ca_bundle_path().empty() == (x.ca_bundle_paths_size() == 0)) {
      errors.push_back(
          "plugins.NodeAttestor.x509pop.plugin_data: set exactly one of ca_bundle_path, ca_bundle_paths");
    }
    out.x509pop = x;
  }
  if (p.upstreamauthority().has_disk()) {
    const auto& d = p.upstreamauthority().disk().plugin_data();
    if (d.cert_file_path().empty()) {
      errors.push_back("plugins.UpstreamAuthority.disk.plugin_data.cert_file_path: required");
    }
    if (d.key_file_path().empty()) {
      errors.push_back("plugins.UpstreamAuthority.disk.plugin_data.key_file_path: required");
    }
    out.upstream_disk = UpstreamDiskSettings{d.cert_file_path(), d.key_file_path(), d.bundle_file_path()};
  }

  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return out;
}

absl::StatusOr<ServerSettings> LoadServerSettings(const ServerFlags& flags) {
  config::ServerConfig file;
  if (!flags.config_path.empty()) {
    auto text = ReadFile(flags.config_path);
    if (!text.ok()) return text.status();
    absl::Status s = MergeYamlIntoProto(*text, &file);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("config ", flags.config_path, ":\n", s.message()));
    }
  }
  return ResolveServerSettings(file, flags);
}

}  // namespace sigil::server
