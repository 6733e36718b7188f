#include "node-agent/config.h"

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/yaml_proto.h"
#include "node-agent/node_attestors.h"
#include "node-agent/test_util.h"

namespace sigil::agent {
namespace {

using testing::TempDir;

absl::StatusOr<AgentSettings> Resolve(const std::string& yaml, const AgentFlags& flags = {}) {
  config::AgentConfig file;
  absl::Status s = MergeYamlIntoProto(yaml, &file);
  if (!s.ok()) return s;
  return ResolveAgentSettings(file, flags);
}

AgentFlags Minimal() {
  AgentFlags f;
  f.trust_domain = "example.org";
  f.server_address = "sigil-server.local";
  return f;
}

std::string WriteRootPem(const TempDir& dir) {
  auto ca = testing::TestCa::Root("example.org", absl::Now() - absl::Hours(1));
  std::string path = dir.File("bundle.pem");
  EXPECT_TRUE(WriteFileAtomic(path, ca.cert.ToPem(), 0644).ok());
  return path;
}

TEST(AgentConfig, RequiredKeysAloneGiveSpireDefaults) {
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve("", Minimal()));
  EXPECT_EQ(s.trust_domain.name(), "example.org");
  EXPECT_EQ(s.server_address, "sigil-server.local");
  EXPECT_EQ(s.server_port, 8081);
  EXPECT_EQ(s.socket_path, "/tmp/sigil-agent/public/api.sock");
  EXPECT_EQ(s.data_dir, "./.data");
  EXPECT_EQ(s.node_attestor, "");
  EXPECT_FALSE(s.insecure_bootstrap);
  EXPECT_FALSE(s.trust_bundle.has_value());
  EXPECT_EQ(s.log_level, "INFO");
  EXPECT_EQ(s.log_format, "text");
  EXPECT_TRUE(s.discover_workload_path);
  EXPECT_EQ(s.workload_size_limit, 0);
  EXPECT_EQ(s.ServerTarget(), "sigil-server.local:8081");
}

TEST(AgentConfig, FileKeysAreSpireNames) {
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve(R"(
agent:
  trust_domain: example.org
  server_address: 10.0.0.1
  server_port: 9090
  socket_path: /run/sigil/agent.sock
  data_dir: /var/lib/sigil-agent
  join_token: abc
  log_level: DEBUG
  log_format: json
plugins:
  WorkloadAttestor:
    unix:
      plugin_data:
        discover_workload_path: false
        workload_size_limit: 1048576
)"));
  EXPECT_EQ(s.ServerTarget(), "10.0.0.1:9090");
  EXPECT_EQ(s.socket_path, "/run/sigil/agent.sock");
  EXPECT_EQ(s.data_dir, "/var/lib/sigil-agent");
  EXPECT_EQ(s.join_token, "abc");
  EXPECT_EQ(s.node_attestor, "join_token");
  EXPECT_EQ(s.log_level, "DEBUG");
  EXPECT_EQ(s.log_format, "json");
  EXPECT_FALSE(s.discover_workload_path);
  EXPECT_EQ(s.workload_size_limit, 1048576);
}

TEST(AgentConfig, FlagsOverrideTheFile) {
  TempDir dir;
  AgentFlags f;
  f.trust_domain = "flag.org";
  f.server_address = "flag-server";
  f.server_port = 7000;
  f.socket_path = "/tmp/flag.sock";
  f.data_dir = "/tmp/flag-data";
  f.join_token = "flagtoken";
  f.log_level = "WARN";
  f.insecure_bootstrap = false;
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve(R"(
agent:
  trust_domain: file.org
  server_address: file-server
  server_port: 8081
  socket_path: /tmp/file.sock
  data_dir: /tmp/file-data
  join_token: filetoken
  log_level: ERROR
  insecure_bootstrap: true
)",
                                                 f));
  EXPECT_EQ(s.trust_domain.name(), "flag.org");
  EXPECT_EQ(s.ServerTarget(), "flag-server:7000");
  EXPECT_EQ(s.socket_path, "/tmp/flag.sock");
  EXPECT_EQ(s.data_dir, "/tmp/flag-data");
  EXPECT_EQ(s.join_token, "flagtoken");
  EXPECT_EQ(s.log_level, "WARN");
  EXPECT_FALSE(s.insecure_bootstrap);
}

TEST(AgentConfig, MissingTrustDomainAndServerAddressAreBothReported) {
  auto s = Resolve("");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS(s, absl::StatusCode::kInvalidArgument, "agent.trust_domain: required");
  EXPECT_STATUS(s, absl::StatusCode::kInvalidArgument, "agent.server_address: required");
}

TEST(AgentConfig, EveryBadValueIsReportedWithItsKey) {
  auto s = Resolve(R"(
agent:
  trust_domain: Example.ORG
  server_address: "bad host/name"
  server_port: 70000
  socket_path: /tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock
  log_level: LOUD
  log_format: xml
plugins:
  WorkloadAttestor:
    unix:
      plugin_data:
        workload_size_limit: -1
)");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  std::string m(s.status().message());
  for (const char* key : {"agent.trust_domain:", "agent.server_address:", "agent.server_port: 70000",
                          "agent.socket_path:", "agent.log_level: unknown level \"LOUD\"",
                          "agent.log_format: unknown format \"xml\"",
                          "plugins.WorkloadAttestor.unix.plugin_data.workload_size_limit"}) {
    EXPECT_NE(m.find(key), std::string::npos) << "missing " << key << " in:\n" << m;
  }
}

TEST(AgentConfig, PortZeroIsRefused) {
  AgentFlags f = Minimal();
  f.server_port = 0;
  EXPECT_STATUS(Resolve("", f), absl::StatusCode::kInvalidArgument, "agent.server_port: 0 is not a port");
}

TEST(AgentConfig, TrustBundleIsParsed) {
  TempDir dir;
  AgentFlags f = Minimal();
  f.trust_bundle_path = WriteRootPem(dir);
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve("", f));
  ASSERT_TRUE(s.trust_bundle.has_value());
  EXPECT_EQ(s.trust_bundle->x509_authorities().size(), 1u);
  EXPECT_EQ(s.trust_bundle->trust_domain().name(), "example.org");
}

TEST(AgentConfig, MissingTrustBundleFileNamesKeyAndPath) {
  AgentFlags f = Minimal();
  f.trust_bundle_path = "/nonexistent/bundle.pem";
  EXPECT_STATUS(Resolve("", f), absl::StatusCode::kInvalidArgument,
                "agent.trust_bundle_path: cannot open /nonexistent/bundle.pem");
}

TEST(AgentConfig, TrustBundleWithoutCertificatesIsRefused) {
  TempDir dir;
  ASSERT_OK(WriteFileAtomic(dir.File("empty.pem"), "\n", 0644));
  AgentFlags f = Minimal();
  f.trust_bundle_path = dir.File("empty.pem");
  EXPECT_STATUS(Resolve("", f), absl::StatusCode::kInvalidArgument, "holds no PEM certificate");
  ASSERT_OK(WriteFileAtomic(dir.File("junk.pem"),
                            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", 0644));
  f.trust_bundle_path = dir.File("junk.pem");
  EXPECT_STATUS(Resolve("", f), absl::StatusCode::kInvalidArgument, "agent.trust_bundle_path: " + dir.File("junk.pem"));
}

TEST(AgentConfig, TrustBundleAndInsecureBootstrapExcludeEachOther) {
  TempDir dir;
  AgentFlags f = Minimal();
  f.trust_bundle_path = WriteRootPem(dir);
  f.insecure_bootstrap = true;
  EXPECT_STATUS(Resolve("", f), absl::StatusCode::kInvalidArgument,
                "agent.insecure_bootstrap: cannot be combined with trust_bundle_path");
}

TEST(AgentConfig, ConfiguredJoinTokenPluginIsSelected) {
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve(R"(
plugins:
  NodeAttestor:
    join_token:
      plugin_data: {}
)",
                                                 Minimal()));
  EXPECT_EQ(s.node_attestor, "join_token");
  EXPECT_EQ(s.join_token, "");
}

TEST(AgentConfig, X509PopNodeAttestorIsSelectedFromThePluginsSection) {
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve(R"(
plugins:
  NodeAttestor:
    x509pop:
      plugin_data:
        private_key_path: /nonexistent/node.key
        certificate_path: /nonexistent/node.pem
)",
                                                 Minimal()));
  EXPECT_EQ(s.node_attestor, "x509pop");
  EXPECT_EQ(BuiltinNodeAttestorNames(), (std::vector<std::string>{"join_token", "x509pop"}));
  // The attestor reads its files when created: a missing key names itself.
  EXPECT_STATUS(CreateNodeAttestor(s), absl::StatusCode::kNotFound, "nodeattestor(x509pop)");
}

TEST(AgentConfig, JoinTokenWithAnotherNodeAttestorIsRefused) {
  AgentFlags f = Minimal();
  f.join_token = "tok";
  auto s = Resolve(R"(
plugins:
  NodeAttestor:
    x509pop:
      plugin_data:
        private_key_path: /k.pem
        certificate_path: /c.pem
)",
                   f);
  EXPECT_STATUS(s, absl::StatusCode::kInvalidArgument,
                "agent.join_token: a join token was given but the configured node attestor is x509pop");
}

TEST(AgentConfig, TwoNodeAttestorsAreRefused) {
  auto s = Resolve(R"(
plugins:
  NodeAttestor:
    join_token: {}
    x509pop: {}
)",
                   Minimal());
  EXPECT_STATUS(s, absl::StatusCode::kInvalidArgument,
                "plugins.NodeAttestor: configure exactly one node attestor, found join_token, x509pop");
}

TEST(AgentConfig, UnknownKeyIsRefusedWithItsPath) {
  TempDir dir;
  ASSERT_OK(WriteFileAtomic(dir.File("agent.yaml"), "agent:\n  trust_domain: example.org\n  server_adress: x\n", 0644));
  AgentFlags f;
  f.config_path = dir.File("agent.yaml");
  EXPECT_STATUS(LoadAgentSettings(f), absl::StatusCode::kInvalidArgument, "server_adress");
}

TEST(AgentConfig, MissingConfigFileIsNotFound) {
  AgentFlags f;
  f.config_path = "/nonexistent/agent.yaml";
  EXPECT_STATUS(LoadAgentSettings(f), absl::StatusCode::kNotFound, "/nonexistent/agent.yaml");
}

TEST(AgentConfig, SampleConfigInDeployIsValid) {
  ASSERT_OK_AND_ASSIGN(std::string yaml, ReadFile(::sigil::testing::SourceDir() + "/deploy/agent.yaml"));
  // The sample names /etc/sigil/bootstrap-bundle.pem; point it at a real file.
  TempDir dir;
  const std::string bundle = WriteRootPem(dir);
  const std::string sample_path = "/etc/sigil/bootstrap-bundle.pem";
  auto at = yaml.rfind(sample_path);
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, sample_path.size(), bundle);
  AgentFlags f;
  f.join_token = "token-from-the-command-line";
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve(yaml, f));
  EXPECT_EQ(s.node_attestor, "join_token");
  EXPECT_EQ(s.server_port, 8081);
  EXPECT_TRUE(s.trust_bundle.has_value());
}

TEST(AgentConfig, Ipv6ServerAddressIsBracketed) {
  AgentFlags f = Minimal();
  f.server_address = "::1";
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve("", f));
  EXPECT_EQ(s.ServerTarget(), "[::1]:8081");
}

TEST(NodeAttestors, NoneConfiguredIsFailedPreconditionSayingHowToConfigureOne) {
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve("", Minimal()));
  EXPECT_STATUS(CreateNodeAttestor(s), absl::StatusCode::kFailedPrecondition, "-joinToken");
}

TEST(NodeAttestors, JoinTokenAttestorSendsTheToken) {
  AgentFlags f = Minimal();
  f.join_token = "tok123";
  ASSERT_OK_AND_ASSIGN(AgentSettings s, Resolve("", f));
  ASSERT_OK_AND_ASSIGN(auto attestor, CreateNodeAttestor(s));
  EXPECT_EQ(attestor->name(), "join_token");
  ASSERT_OK_AND_ASSIGN(std::string payload, attestor->Payload());
  EXPECT_EQ(payload, "tok123");
}

}  // namespace
}  // namespace sigil::agent
