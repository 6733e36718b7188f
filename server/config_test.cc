#include "server/config.h"

#include "common/yaml_proto.h"
#include "gtest/gtest.h"

namespace sigil::server {
namespace {

absl::StatusOr<ServerSettings> Resolve(const std::string& yaml, const ServerFlags& flags = {}) {
  config::ServerConfig file;
  absl::Status s = MergeYamlIntoProto(yaml, &file);
  if (!s.ok()) return s;
  return ResolveServerSettings(file, flags);
}

TEST(ServerConfig, OnlyTrustDomainGivesDefaults) {
  ServerFlags flags;
  flags.trust_domain = "example.org";
  auto s = Resolve("", flags);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->trust_domain.name(), "example.org");
  EXPECT_EQ(s->bind_address, "0.0.0.0");
  EXPECT_EQ(s->bind_port, 8081);
  EXPECT_EQ(s->socket_path, "/tmp/sigil-server/private/api.sock");
  EXPECT_EQ(s->data_dir, "./.data");
  EXPECT_EQ(s->datastore_path, "./.data/datastore");
  EXPECT_EQ(s->keys_path, "./.data/keys.json");
  EXPECT_EQ(s->key_manager, "disk");
  EXPECT_EQ(s->ca.ca_ttl, absl::Hours(24));
  EXPECT_EQ(s->ca.default_x509_svid_ttl, absl::Hours(1));
  EXPECT_EQ(s->ca.default_jwt_svid_ttl, absl::Minutes(5));
  EXPECT_EQ(s->agent_ttl, absl::Hours(1));
  EXPECT_TRUE(s->join_token_enabled);
  EXPECT_FALSE(s->upstream_disk.has_value());
}

TEST(ServerConfig, MissingTrustDomainIsRefused) {
  auto s = Resolve("");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("server.trust_domain: required"), std::string::npos);
}

TEST(ServerConfig, FlagsOverrideTheFile) {
  ServerFlags flags;
  flags.trust_domain = "flag.org";
  flags.bind_port = 9000;
  flags.data_dir = "/var/lib/x";
  flags.socket_path = "/run/x.sock";
  flags.log_level = "DEBUG";
  flags.bind_address = "127.0.0.1";
  auto s = Resolve(R"(
server:
  trust_domain: file.org
  bind_port: 8081
  data_dir: /srv/sigil
  log_level: ERROR
)",
                   flags);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->trust_domain.name(), "flag.org");
  EXPECT_EQ(s->bind_port, 9000);
  EXPECT_EQ(s->data_dir, "/var/lib/x");
  EXPECT_EQ(s->keys_path, "/var/lib/x/keys.json");
  EXPECT_EQ(s->socket_path, "/run/x.sock");
  EXPECT_EQ(s->log_level, "DEBUG");
  EXPECT_EQ(s->bind_address, "127.0.0.1");
}

TEST(ServerConfig, EveryBadValueIsReportedWithItsKey) {
  auto s = Resolve(R"(
server:
  trust_domain: Example.ORG
  bind_port: 70000
  ca_key_type: ec-p999
  log_level: LOUD
  log_format: xml
  ca_ttl: 10s
)");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  std::string m(s.status().message());
  EXPECT_NE(m.find("server.trust_domain:"), std::string::npos) << m;
  EXPECT_NE(m.find("server.bind_port: 70000"), std::string::npos) << m;
  EXPECT_NE(m.find("server.ca_key_type:"), std::string::npos) << m;
  EXPECT_NE(m.find("server.log_level: unknown level \"LOUD\""), std::string::npos) << m;
  EXPECT_NE(m.find("server.log_format: unknown format \"xml\""), std::string::npos) << m;
  EXPECT_NE(m.find("server.ca_ttl: must be at least 1m"), std::string::npos) << m;
}

TEST(ServerConfig, PluginsAreApplied) {
  auto s = Resolve(R"(
server:
  trust_domain: example.org
  ca_key_type: ec-p384
  jwt_issuer: https://oidc.example.org
  ca_subject:
    country: [DE]
    organization: [Acme]
    common_name: Acme CA
plugins:
  KeyManager:
    memory: {}
  DataStore:
    rocksdb:
      plugin_data:
        directory: /fast/db
  UpstreamAuthority:
    disk:
      plugin_data:
        cert_file_path: /etc/up.crt
        key_file_path: /etc/up.key
)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->key_manager, "memory");
  EXPECT_EQ(s->datastore_path, "/fast/db");
  EXPECT_EQ(s->ca.ca_key_type, crypto::KeyType::kEcP384);
  EXPECT_EQ(s->ca.jwt_issuer, "https://oidc.example.org");
  ASSERT_EQ(s->ca.ca_subject.size(), 3u);
  EXPECT_EQ(s->ca.ca_subject[0].second, "DE");
  ASSERT_TRUE(s->upstream_disk.has_value());
  EXPECT_EQ(s->upstream_disk->cert_file_path, "/etc/up.crt");
}

TEST(ServerConfig, UpstreamWithoutKeyIsRefused) {
  auto s = Resolve(R"(
server: {trust_domain: example.org}
plugins:
  UpstreamAuthority:
    disk:
      plugin_data:
        cert_file_path: /etc/up.crt
)");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("plugins.UpstreamAuthority.disk.plugin_data.key_file_path: required"),
            std::string::npos);
}

TEST(ServerConfig, TwoKeyManagersAreRefused) {
  auto s = Resolve(R"(
server: {trust_domain: example.org}
plugins:
  KeyManager:
    memory: {}
    disk: {}
)");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("exactly one of memory, disk"), std::string::npos);
}

TEST(ServerConfig, X509PopAloneDisablesJoinTokens) {
  auto s = Resolve(R"(
server: {trust_domain: example.org}
plugins:
  NodeAttestor:
    x509pop:
      plugin_data:
        ca_bundle_path: /etc/sigil/node-ca.pem
        agent_path_template: "/x509pop/{{ .Subject.CommonName }}"
)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->join_token_enabled);
  ASSERT_TRUE(s->x509pop.has_value());
  EXPECT_EQ(s->x509pop->ca_bundle_path(), "/etc/sigil/node-ca.pem");
}

TEST(ServerConfig, X509PopNeedsExactlyOneBundleKey) {
  auto s = Resolve(R"(
server: {trust_domain: example.org}
plugins:
  NodeAttestor:
    join_token: {}
    x509pop:
      plugin_data: {}
)");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("exactly one of ca_bundle_path, ca_bundle_paths"), std::string::npos);
}

TEST(ServerConfig, MissingConfigFileIsNotFound) {
  ServerFlags flags;
  flags.config_path = "/nonexistent/server.yaml";
  auto s = LoadServerSettings(flags);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("/nonexistent/server.yaml"), std::string::npos);
}

TEST(ServerConfig, UnknownKeyInFileIsRefusedWithPath) {
  auto s = Resolve("server:\n  trust_domain: example.org\n  bind_prot: 1\n");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("server.bind_prot: unknown key"), std::string::npos);
}

}  // namespace
}  // namespace sigil::server
