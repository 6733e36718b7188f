#include "common/cli_output.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/api.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"

namespace sigil::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace health = ::grpc::health::v1;

// ---- output format ----

TEST(ParseOutputFormat, AcceptsSpireNamesCaseInsensitively) {
  EXPECT_EQ(ParseOutputFormat("json").value(), OutputFormat::kJson);
  EXPECT_EQ(ParseOutputFormat("JSON").value(), OutputFormat::kJson);
  EXPECT_EQ(ParseOutputFormat("pretty").value(), OutputFormat::kPretty);
  EXPECT_EQ(ParseOutputFormat("prettyprint").value(), OutputFormat::kPretty);
  EXPECT_EQ(ParseOutputFormat("PrettyPrint").value(), OutputFormat::kPretty);
}

TEST(ParseOutputFormat, UnknownNameFails) {
  absl::StatusOr<OutputFormat> bad = ParseOutputFormat("yaml");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "unknown format option: \"yaml\"");
  EXPECT_EQ(ParseOutputFormat("").status().message(), "unknown format option: \"\"");
}

TEST(AddOutputFlag, StoresTheParsedFormat) {
  FlagSet flags("entry show");
  OutputFormat format = OutputFormat::kPretty;
  AddOutputFlag(flags, &format);
  ASSERT_TRUE(flags.Parse({"-output", "JSON"}).ok());
  EXPECT_EQ(format, OutputFormat::kJson);
  EXPECT_THAT(flags.Usage(), HasSubstr(kOutputFlagUsage));
}

TEST(AddOutputFlag, BadValueNamesTheFlagAndTheFormat) {
  FlagSet flags("api fetch jwt");
  OutputFormat format = OutputFormat::kJson;
  AddOutputFlag(flags, &format, "format", "deprecated; use -output");
  absl::Status s = flags.Parse({"-format", "xml"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "invalid value \"xml\" for flag -format: bad formatter flag: unknown format option: "
            "\"xml\"");
  EXPECT_EQ(format, OutputFormat::kJson);
}

// ---- protobuf JSON ----

TEST(ProtoToJson, SortsKeysAtEveryLevelAndPrintsUnsetFields) {
  google::protobuf::Api api;  // fields in declaration order: name, methods, options, version, ...
  api.set_name("svc");
  google::protobuf::Method* m = api.add_methods();
  m->set_name("Fetch");
  m->set_response_streaming(true);
  EXPECT_EQ(ProtoToJson(api),
            "{\"methods\":[{\"name\":\"Fetch\",\"options\":[],\"request_streaming\":false,"
            "\"request_type_url\":\"\",\"response_streaming\":true,\"response_type_url\":\"\","
            "\"syntax\":\"SYNTAX_PROTO2\"}],\"mixins\":[],\"name\":\"svc\",\"options\":[],"
            "\"syntax\":\"SYNTAX_PROTO2\",\"version\":\"\"}");
}

TEST(ProtoToJson, StructKeysAreSortedAndValuesKeepTheirTypes) {
  google::protobuf::Struct claims;
  (*claims.mutable_fields())["sub"].set_string_value("spiffe://example.org/a");
  (*claims.mutable_fields())["exp"].set_number_value(1767229200);
  (*claims.mutable_fields())["aud"].mutable_list_value()->add_values()->set_string_value("x");
  (*claims.mutable_fields())["adm"].set_bool_value(true);
  EXPECT_EQ(ProtoToJson(claims),
            "{\"adm\":true,\"aud\":[\"x\"],\"exp\":1767229200,\"sub\":\"spiffe://example.org/a\"}");
}

TEST(ProtoToJson, BytesAreStandardBase64AndTextIsNotEscaped) {
  google::protobuf::BytesValue bytes;
  bytes.set_value(std::string("\xff\xfe\xfb", 3));
  EXPECT_EQ(ProtoToJson(bytes), "\"//77\"");
  google::protobuf::StringValue text;
  text.set_value("<a & b> \xc3\xa9");
  EXPECT_EQ(ProtoToJson(text), "\"<a & b> \xc3\xa9\"");
}

TEST(ProtosToJson, SeveralMessagesMakeAnArrayOneDoesNot) {
  google::protobuf::Struct a;
  (*a.mutable_fields())["z"].set_null_value(google::protobuf::NULL_VALUE);
  google::protobuf::Struct b;
  EXPECT_EQ(ProtosToJson({&a, &b}), "[{\"z\":null},{}]");
  EXPECT_EQ(ProtosToJson({&a}), "{\"z\":null}");
}

// ---- Go's text forms ----

TEST(GoTimeUtc, MatchesGoTimeString) {
  EXPECT_EQ(GoTimeUtc(absl::FromUnixSeconds(1767225600)), "2026-01-01 00:00:00 +0000 UTC");
  EXPECT_EQ(GoTimeUtc(absl::UnixEpoch()), "1970-01-01 00:00:00 +0000 UTC");
  EXPECT_EQ(GoTimeUtc(absl::FromUnixSeconds(1767225600) + absl::Milliseconds(999)),
            "2026-01-01 00:00:00 +0000 UTC");
}

TEST(GrpcCodeName, MatchesGoCodes) {
  EXPECT_EQ(GrpcCodeName(0), "OK");
  EXPECT_EQ(GrpcCodeName(3), "InvalidArgument");
  EXPECT_EQ(GrpcCodeName(4), "DeadlineExceeded");
  EXPECT_EQ(GrpcCodeName(6), "AlreadyExists");
  EXPECT_EQ(GrpcCodeName(7), "PermissionDenied");
  EXPECT_EQ(GrpcCodeName(16), "Unauthenticated");
  EXPECT_EQ(GrpcCodeName(17), "Code(17)");
  EXPECT_EQ(GrpcCodeName(-1), "Code(-1)");
}

// ---- Unix socket client ----

TEST(UnixTarget, PlainPathIsUnchanged) {
  EXPECT_EQ(UnixTarget("/tmp/sigil-server/private/api.sock"),
            "unix:/tmp/sigil-server/private/api.sock");
  EXPECT_EQ(UnixTarget("rel_dir/a~b.sock"), "unix:rel_dir/a~b.sock");
}

TEST(UnixTarget, UriSpecialBytesAreEscaped) {
  EXPECT_EQ(UnixTarget("/tmp/we ird%41?#/api.sock"), "unix:/tmp/we%20ird%2541%3f%23/api.sock");
  EXPECT_EQ(UnixTarget("/a:b@c\xc3\xa9"), "unix:/a%3ab%40c%c3%a9");
}

// A grpc.health.v1 service answering Check with a set status.
class FakeHealth final : public health::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const health::HealthCheckRequest* req,
                     health::HealthCheckResponse* resp) override {
    last_service_ = req->service();
    resp->set_status(status_);
    return grpc::Status::OK;
  }
  health::HealthCheckResponse::ServingStatus status_ = health::HealthCheckResponse::SERVING;
  std::string last_service_ = "(none)";
};

class SocketClientTest : public ::testing::Test {
 protected:
  ~SocketClientTest() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Serves FakeHealth at `path`, passing it to gRPC escaped.
  void Serve(const std::string& path) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(UnixTarget(path), grpc::InsecureServerCredentials());
    builder.RegisterService(&health_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr) << "cannot listen at " << path;
  }

  // A socket file nobody listens on.
  void BindStale(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }

  // The status of a Check call through `client`.
  static grpc::Status Call(SocketClient& client) {
    health::HealthCheckRequest req;
    health::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return client.Health().Check(&ctx, req, &resp);
  }

  const ::sigil::testing::TempDir tmp_{"sigil-cli-output-test"};
  const std::string dir_ = tmp_.path();
  FakeHealth health_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(SocketClientTest, PathWithUriSpecialCharactersConnects) {
  Serve(dir_ + "/api.sock");
  // The same socket through a directory name that means something in a URI.
  std::string odd = dir_ + "/we ird%41?#";
  ASSERT_EQ(symlink(dir_.c_str(), odd.c_str()), 0);
  SocketClient client("agent", odd + "/api.sock");
  grpc::Status st = Call(client);
  EXPECT_TRUE(st.ok()) << client.DescribeRpcError(st);
  EXPECT_EQ(health_.last_service_, "");
}

TEST_F(SocketClientTest, MissingSocketSaysThePeerIsNotRunning) {
  std::string path = dir_ + "/none.sock";
  SocketClient client("server", path);
  grpc::Status st = Call(client);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(client.DescribeRpcError(st),
            "the server is not running at " + path + ": the socket does not exist");
}

TEST_F(SocketClientTest, StaleSocketSaysConnectionRefused) {
  std::string path = dir_ + "/stale.sock";
  BindStale(path);
  SocketClient client("agent", path);
  EXPECT_EQ(client.DescribeRpcError(Call(client)),
            "the agent is not running at " + path + ": connection refused (stale socket?)");
}

TEST_F(SocketClientTest, FileThatIsNotASocketIsNamed) {
  std::string path = dir_ + "/file";
  ASSERT_TRUE(WriteFileAtomic(path, "x", 0644).ok());
  SocketClient client("agent", path);
  EXPECT_EQ(client.DescribeRpcError(Call(client)),
            "cannot reach the agent at " + path + ": not a Unix socket");
}

TEST_F(SocketClientTest, PathThatCannotBeExaminedGivesTheReason) {
  std::string file = dir_ + "/file";
  ASSERT_TRUE(WriteFileAtomic(file, "x", 0644).ok());
  std::string path = file + "/api.sock";  // a file as a directory: ENOTDIR
  SocketClient client("server", path);
  EXPECT_EQ(client.DescribeRpcError(Call(client)),
            "cannot reach the server at " + path + ": " + std::strerror(ENOTDIR));
}

TEST_F(SocketClientTest, SocketWithoutWritePermissionIsNamed) {
  if (geteuid() == 0) GTEST_SKIP() << "root may write to any socket";
  std::string path = dir_ + "/private.sock";
  Serve(path);
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  SocketClient client("server", path);
  EXPECT_EQ(client.DescribeRpcError(Call(client)),
            "cannot reach the server at " + path + ": permission denied");
}

TEST(SocketClient, OtherFailuresPrintLikeSpire) {
  SocketClient client("server", "/nonexistent/api.sock");
  grpc::Status denied(grpc::StatusCode::PERMISSION_DENIED, "caller is not an admin");
  EXPECT_EQ(client.DescribeRpcError(denied),
            "rpc error: code = PermissionDenied desc = caller is not an admin");
  EXPECT_EQ(client.DescribeRpcError(grpc::Status(grpc::StatusCode::UNKNOWN, "")),
            "rpc error: code = Unknown desc = ");
}

TEST(SocketClient, RpcErrorKeepsTheCodeAndPrefixesTheContext) {
  SocketClient client("server", "/nonexistent/api.sock");
  absl::Status s = client.RpcError(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such entry"),
                                   "failed to evict agent");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "failed to evict agent: rpc error: code = NotFound desc = no such entry");
  absl::Status bare = client.RpcError(grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "dup"));
  EXPECT_EQ(bare.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(bare.message(), "rpc error: code = AlreadyExists desc = dup");
  EXPECT_EQ(client.RpcError(grpc::Status::OK).code(), absl::StatusCode::kInternal);
}

// ---- healthcheck ----

TEST_F(SocketClientTest, HealthcheckServingIsHealthy) {
  Serve(dir_ + "/api.sock");
  SocketClient client("agent", dir_ + "/api.sock");
  std::ostringstream out, err;
  HealthcheckFlags flags;
  flags.verbose = true;
  EXPECT_TRUE(CheckHealth(client, flags, OutputFormat::kPretty, out, err).ok());
  EXPECT_EQ(out.str(), "Checking agent health...\nAgent is healthy.\n");
  EXPECT_EQ(err.str(), "");
}

TEST_F(SocketClientTest, HealthcheckJsonPrintsTheResponse) {
  Serve(dir_ + "/api.sock");
  SocketClient client("server", dir_ + "/api.sock");
  std::ostringstream out, err;
  EXPECT_TRUE(CheckHealth(client, {}, OutputFormat::kJson, out, err).ok());
  EXPECT_EQ(out.str(), "{\"status\":\"SERVING\"}\n");
}

TEST_F(SocketClientTest, HealthcheckNotServingIsUnavailable) {
  health_.status_ = health::HealthCheckResponse::NOT_SERVING;
  Serve(dir_ + "/api.sock");
  SocketClient client("server", dir_ + "/api.sock");
  std::ostringstream out, err;
  absl::Status s = CheckHealth(client, {}, OutputFormat::kPretty, out, err);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "server returned status \"NOT_SERVING\"");
  EXPECT_EQ(out.str(), "");
}

TEST_F(SocketClientTest, HealthcheckUnreachableSaysWhyOnlyWhenVerbose) {
  std::string path = dir_ + "/none.sock";
  SocketClient client("server", path);
  std::ostringstream out, err;
  absl::Status s = CheckHealth(client, {}, OutputFormat::kPretty, out, err);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "unable to determine health");
  EXPECT_EQ(err.str(), "");
  HealthcheckFlags verbose;
  verbose.verbose = true;
  s = CheckHealth(client, verbose, OutputFormat::kPretty, out, err);
  EXPECT_EQ(s.message(), "unable to determine health");
  EXPECT_EQ(err.str(), "Failed to check health: the server is not running at " + path +
                           ": the socket does not exist\n");
}

// The least a CLI's command context offers the healthcheck command.
class TestContext {
 public:
  explicit TestContext(SocketClient* client, OutputFormat format)
      : client_(client), format_(format) {}
  SocketClient& client() { return *client_; }
  OutputFormat format() const { return format_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  std::string out_text() const { return out_.str(); }

 private:
  SocketClient* client_;
  OutputFormat format_;
  std::ostringstream out_, err_;
};

TEST_F(SocketClientTest, HealthcheckCommandRunsWithTheParsedFlags) {
  Serve(dir_ + "/api.sock");
  SocketClient client("server", dir_ + "/api.sock");
  std::unique_ptr<Command<TestContext>> command = NewHealthcheckCommand<TestContext>();
  FlagSet flags("healthcheck");
  command->AddFlags(flags);
  ASSERT_TRUE(flags.Parse({"-verbose"}).ok());
  TestContext ctx(&client, OutputFormat::kPretty);
  EXPECT_TRUE(command->Run(flags, ctx).ok());
  EXPECT_EQ(ctx.out_text(), "Checking server health...\nServer is healthy.\n");
}

TEST(AddHealthcheckFlags, RegistersShallowAndVerbose) {
  FlagSet flags("healthcheck");
  HealthcheckFlags hc;
  AddHealthcheckFlags(flags, &hc);
  ASSERT_TRUE(flags.Parse({"-shallow", "-verbose"}).ok());
  EXPECT_TRUE(hc.shallow);
  EXPECT_TRUE(hc.verbose);
}

// ---- command dispatch ----

CommandTable SampleTable() {
  return CommandTable("sigil-x", "Other commands:\n    run    Runs\n\nClient commands:\n",
                      {{"api fetch", "Fetches (old name)"},
                       {"api fetch x509", "Fetches X509"},
                       {"api watch", "Watches"},
                       {"entry create", "Creates"},
                       {"healthcheck", "Checks"}});
}

std::string Unresolved(const std::vector<std::string>& args, int* code) {
  std::ostringstream err;
  *code = SampleTable().PrintUnresolved(args, err);
  return err.str();
}

TEST(CommandTable, FindPrefersTheLongestName) {
  CommandTable table = SampleTable();
  size_t words = 0;
  EXPECT_EQ(table.Find({"api", "fetch", "x509", "-write", "d"}, &words), 1u);
  EXPECT_EQ(words, 3u);
  EXPECT_EQ(table.Find({"api", "fetch", "-silent"}, &words), 0u);
  EXPECT_EQ(words, 2u);
  EXPECT_EQ(table.Find({"healthcheck"}, &words), 4u);
  EXPECT_EQ(words, 1u);
}

TEST(CommandTable, FindReturnsNothingForPartialOrUnknownWords) {
  CommandTable table = SampleTable();
  size_t words = 7;
  EXPECT_EQ(table.Find({}, &words), std::nullopt);
  EXPECT_EQ(table.Find({"api"}, &words), std::nullopt);
  EXPECT_EQ(table.Find({"entry", "update"}, &words), std::nullopt);
  EXPECT_EQ(table.Find({"fetch"}, &words), std::nullopt);
  EXPECT_EQ(words, 7u);
}

TEST(CommandTable, IsFirstWordKnowsOnlyFirstWords) {
  CommandTable table = SampleTable();
  EXPECT_TRUE(table.IsFirstWord("api"));
  EXPECT_TRUE(table.IsFirstWord("healthcheck"));
  EXPECT_FALSE(table.IsFirstWord("fetch"));
  EXPECT_FALSE(table.IsFirstWord("run"));
  EXPECT_FALSE(table.IsFirstWord(""));
}

TEST(CommandTable, NoArgumentsPrintsUsageAndFails) {
  int code = -1;
  EXPECT_EQ(Unresolved({}, &code),
            "Usage: sigil-x <command> [<args>]\n\n"
            "Other commands:\n    run    Runs\n\nClient commands:\n"
            "    api fetch         Fetches (old name)\n"
            "    api fetch x509    Fetches X509\n"
            "    api watch         Watches\n"
            "    entry create      Creates\n"
            "    healthcheck       Checks\n");
  EXPECT_EQ(code, 1);
}

TEST(CommandTable, HelpPrintsUsageAndSucceeds) {
  for (const char* help : {"help", "-h", "-help", "--h", "--help"}) {
    int code = -1;
    EXPECT_THAT(Unresolved({help}, &code), StartsWith("Usage: sigil-x <command> [<args>]\n"));
    EXPECT_EQ(code, 0) << help;
  }
}

TEST(CommandTable, UnknownCommandIsNamed) {
  int code = -1;
  EXPECT_THAT(Unresolved({"frobnicate", "x"}, &code),
              StartsWith("Unknown command: frobnicate\n\nUsage: sigil-x <command>"));
  EXPECT_EQ(code, 1);
}

TEST(CommandTable, GroupListsItsSubcommands) {
  int code = -1;
  EXPECT_EQ(Unresolved({"api"}, &code),
            "Usage: sigil-x api <subcommand> [<args>]\n\nSubcommands:\n"
            "    api fetch         Fetches (old name)\n"
            "    api fetch x509    Fetches X509\n"
            "    api watch         Watches\n");
  EXPECT_EQ(code, 1);
  EXPECT_THAT(Unresolved({"api", "-h"}, &code), StartsWith("Usage: sigil-x api <subcommand>"));
  EXPECT_EQ(code, 0);
}

TEST(CommandTable, UnknownSubcommandNamesTheDeepestGroup) {
  int code = -1;
  EXPECT_EQ(Unresolved({"entry", "rotate", "-x"}, &code),
            "Unknown command: entry rotate\n\n"
            "Usage: sigil-x entry <subcommand> [<args>]\n\nSubcommands:\n"
            "    entry create    Creates\n");
  EXPECT_EQ(code, 1);
}

TEST(CommandList, SortsTheSpecsAndFindsThem) {
  struct Spec {
    std::string name;
    std::string synopsis;
    int extra;
  };
  CommandList<Spec> list("sigil-x", "Client commands:\n",
                         {{"entry show", "Shows", 1}, {"api fetch", "Fetches", 2}});
  ASSERT_EQ(list.specs().size(), 2u);
  EXPECT_EQ(list.specs()[0].name, "api fetch");
  EXPECT_EQ(list.table().commands()[0].synopsis, "Fetches");
  size_t words = 0;
  const Spec* spec = list.Find({"entry", "show", "-x"}, &words);
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(spec->extra, 1);
  EXPECT_EQ(words, 2u);
  EXPECT_EQ(list.Find({"entry"}, &words), nullptr);
  std::ostringstream err;
  EXPECT_EQ(list.table().PrintUnresolved({}, err), 1);
  EXPECT_EQ(err.str(),
            "Usage: sigil-x <command> [<args>]\n\nClient commands:\n"
            "    api fetch     Fetches\n"
            "    entry show    Shows\n");
}

struct ParsedCommand {
  std::optional<int> code;
  std::string err;
  std::string name;
};

ParsedCommand ParseSample(const std::vector<std::string>& args) {
  FlagSet flags("entry create");
  std::string name;
  flags.String("name", &name, "", "A name");
  std::ostringstream err;
  std::optional<int> code = ParseCommandFlags(flags, args, "Creates entries", "Error: ", err);
  return {code, err.str(), name};
}

TEST(ParseCommandFlags, ValidFlagsLetTheCommandRun) {
  ParsedCommand p = ParseSample({"-name", "x"});
  EXPECT_EQ(p.code, std::nullopt);
  EXPECT_EQ(p.err, "");
  EXPECT_EQ(p.name, "x");
}

TEST(ParseCommandFlags, BadFlagPrintsTheErrorAndUsage) {
  ParsedCommand p = ParseSample({"-bogus"});
  EXPECT_EQ(p.code, 1);
  EXPECT_THAT(p.err, StartsWith("flag provided but not defined: -bogus\nUsage of entry create:\n"));
}

TEST(ParseCommandFlags, HelpPrintsTheSynopsisAndUsage) {
  ParsedCommand p = ParseSample({"-h"});
  EXPECT_EQ(p.code, 0);
  EXPECT_THAT(p.err, StartsWith("Creates entries\n\nUsage of entry create:\n  -name string\n"));
}

TEST(ParseCommandFlags, LeftoverArgumentIsRejectedWithThePrefix) {
  ParsedCommand p = ParseSample({"-name", "x", "spiffe://example.org/a"});
  EXPECT_EQ(p.code, 1);
  EXPECT_EQ(p.err,
            "Error: unexpected argument \"spiffe://example.org/a\" (flags must be given as "
            "-name value)\n");
}

}  // namespace
}  // namespace sigil::cli
