#include "common/config_util.h"

#include <string>

#include "gtest/gtest.h"
#include "sigil/config/server.pb.h"
#include "tests/util/files.h"
#include "tests/util/status_matchers.h"

namespace sigil {
namespace {

TEST(ReadYamlConfigFile, FillsTheMessage) {
  ::sigil::testing::TempDir dir;
  const std::string path =
      dir.Write("server.yaml", "server:\n  trust_domain: example.org\n  ca_ttl: 2h\n");
  config::ServerConfig cfg;
  ASSERT_OK(ReadYamlConfigFile(path, &cfg));
  EXPECT_EQ(cfg.server().trust_domain(), "example.org");
  EXPECT_EQ(DurationFromProto(cfg.server().ca_ttl()), absl::Hours(2));
}

TEST(ReadYamlConfigFile, MissingFileIsNotFoundNamingThePath) {
  config::ServerConfig cfg;
  EXPECT_STATUS(ReadYamlConfigFile("/nonexistent/server.yaml", &cfg), absl::StatusCode::kNotFound,
                "/nonexistent/server.yaml");
}

TEST(ReadYamlConfigFile, SchemaProblemsComeAfterThePath) {
  ::sigil::testing::TempDir dir;
  const std::string path = dir.Write("server.yaml", "server:\n  bind_prot: 1\n  ca_ttl: soon\n");
  config::ServerConfig cfg;
  absl::Status s = ReadYamlConfigFile(path, &cfg);
  EXPECT_STATUS(s, absl::StatusCode::kInvalidArgument, "config " + path + ":\n");
  EXPECT_STATUS(s, absl::StatusCode::kInvalidArgument, "server.bind_prot: unknown key");
  EXPECT_STATUS(s, absl::StatusCode::kInvalidArgument, "server.ca_ttl");
}

TEST(ConfigErrors, NothingRecordedIsOk) {
  ConfigErrors errors;
  EXPECT_TRUE(errors.Check("server.log_level", absl::OkStatus()));
  EXPECT_OK(errors.ToStatus());
}

TEST(ConfigErrors, EveryProblemIsListedInOrderOnItsOwnLine) {
  ConfigErrors errors;
  errors.Add("server.trust_domain", "required");
  EXPECT_FALSE(errors.Check("server.bind_port", absl::InvalidArgumentError("70000 is not a port")));
  absl::Status s = errors.ToStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "server.trust_domain: required\nserver.bind_port: 70000 is not a port");
}

TEST(FlagOrFile, FlagWinsOverFileWhichWinsOverDefault) {
  EXPECT_EQ(FlagOrFile("flag", "file", "default"), "flag");
  EXPECT_EQ(FlagOrFile("", "file", "default"), "file");
  EXPECT_EQ(FlagOrFile("", "", "default"), "default");
  EXPECT_EQ(FlagOrFile("", ""), "");
}

TEST(DurationFromProto, KeepsNanoseconds) {
  google::protobuf::Duration d;
  d.set_seconds(90);
  d.set_nanos(500000000);
  EXPECT_EQ(DurationFromProto(d), absl::Milliseconds(90500));
}

TEST(ValidateLogLevel, AcceptsUpperOrLowerCaseLevels) {
  for (const char* level : {"DEBUG", "INFO", "WARN", "ERROR", "debug", "info", "warn", "error"}) {
    EXPECT_TRUE(ValidateLogLevel(level).ok()) << level;
  }
  EXPECT_STATUS(ValidateLogLevel("Verbose"), absl::StatusCode::kInvalidArgument,
                "unknown level \"Verbose\" (one of DEBUG, INFO, WARN, ERROR)");
  EXPECT_STATUS(ValidateLogLevel("Info"), absl::StatusCode::kInvalidArgument, "unknown level");
}

TEST(ValidateLogFormat, AcceptsTextAndJson) {
  EXPECT_OK(ValidateLogFormat("text"));
  EXPECT_OK(ValidateLogFormat("json"));
  EXPECT_STATUS(ValidateLogFormat("xml"), absl::StatusCode::kInvalidArgument,
                "unknown format \"xml\" (one of text, json)");
}

TEST(ValidateSocketPath, AllowsAtMost107Bytes) {
  EXPECT_OK(ValidateSocketPath("/" + std::string(106, 'a')));
  const std::string too_long = "/" + std::string(107, 'a');
  EXPECT_STATUS(ValidateSocketPath(too_long), absl::StatusCode::kInvalidArgument,
                "longer than a Unix socket path may be (107 bytes): " + too_long);
}

}  // namespace
}  // namespace sigil
