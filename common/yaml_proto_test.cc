#include "common/yaml_proto.h"

#include "gtest/gtest.h"
#include "sigil/config/server.pb.h"

namespace sigil {
namespace {

using config::ServerConfig;

TEST(YamlProto, LoadsScalarsDurationsAndNestedMessages) {
  ServerConfig cfg;
  absl::Status s = MergeYamlIntoProto(R"(
server:
  trust_domain: example.org
  bind_port: 8081
  ca_ttl: 1h30m
  default_x509_svid_ttl: 90
  ca_subject:
    country: [US]
    organization: [Acme]
plugins:
  KeyManager:
    disk:
      plugin_data:
        keys_path: /var/lib/keys.json
)",
                                      &cfg);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(cfg.server().trust_domain(), "example.org");
  EXPECT_EQ(cfg.server().bind_port(), 8081);
  EXPECT_EQ(cfg.server().ca_ttl().seconds(), 5400);
  EXPECT_EQ(cfg.server().default_x509_svid_ttl().seconds(), 90);
  EXPECT_EQ(cfg.server().ca_subject().country(0), "US");
  EXPECT_EQ(cfg.plugins().keymanager().disk().plugin_data().keys_path(), "/var/lib/keys.json");
}

TEST(YamlProto, UnknownKeyIsRejectedWithItsPath) {
  ServerConfig cfg;
  absl::Status s = MergeYamlIntoProto("server:\n  bind_prot: 1\n", &cfg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("server.bind_prot: unknown key"), std::string::npos) << s;
}

TEST(YamlProto, EveryErrorIsReported) {
  ServerConfig cfg;
  absl::Status s = MergeYamlIntoProto(R"(
server:
  bind_port: eighty
  ca_ttl: forever
  nope: 1
)",
                                      &cfg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("server.bind_port: expected an integer"), std::string::npos) << s;
  EXPECT_NE(s.message().find("server.ca_ttl: invalid duration \"forever\""), std::string::npos) << s;
  EXPECT_NE(s.message().find("server.nope: unknown key"), std::string::npos) << s;
}

TEST(YamlProto, IntegerOutOfRangeIsRejected) {
  ServerConfig cfg;
  absl::Status s = MergeYamlIntoProto("server:\n  bind_port: 99999999999\n", &cfg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("server.bind_port"), std::string::npos);
}

TEST(YamlProto, NegativeDurationIsRejected) {
  ServerConfig cfg;
  absl::Status s = MergeYamlIntoProto("server:\n  ca_ttl: -1h\n", &cfg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("must not be negative"), std::string::npos) << s;
}

TEST(YamlProto, WrongShapeIsRejected) {
  ServerConfig cfg;
  absl::Status s = MergeYamlIntoProto("server: [1, 2]\n", &cfg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("server: expected a mapping"), std::string::npos) << s;
  s = MergeYamlIntoProto("server:\n  ca_subject:\n    country: US\n", &cfg);
  EXPECT_NE(s.message().find("server.ca_subject.country: expected a list"), std::string::npos) << s;
}

TEST(YamlProto, MalformedYamlIsRejected) {
  ServerConfig cfg;
  absl::Status s = MergeYamlIntoProto("server: {trust_domain: [\n", &cfg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("malformed YAML"), std::string::npos) << s;
}

TEST(YamlProto, EmptyDocumentIsEmptyConfig) {
  ServerConfig cfg;
  EXPECT_TRUE(MergeYamlIntoProto("", &cfg).ok());
  EXPECT_FALSE(cfg.has_server());
}

}  // namespace
}  // namespace sigil
