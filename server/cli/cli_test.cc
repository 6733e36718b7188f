// End-to-end tests of the client commands: real command lines, a real gRPC
// channel over a Unix socket, and the fake services of fake_server.h.

#include "server/cli/cli.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "apitypes/convert.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/cli/command.h"
#include "server/cli/fake_server.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/key.h"

namespace sigil::server::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

namespace entryv1 = ::spire::api::server::entry::v1;
namespace agentv1 = ::spire::api::server::agent::v1;
namespace bundlev1 = ::spire::api::server::bundle::v1;
namespace svidv1 = ::spire::api::server::svid::v1;
namespace lav1 = ::spire::api::server::localauthority::v1;
namespace types = ::spire::api::types;
namespace health = ::grpc::health::v1;

constexpr int64_t kNow = 1767225600;  // 2026-01-01T00:00:00Z

struct Result {
  int code;
  std::string out;
  std::string err;
};

types::SPIFFEID Id(const std::string& td, const std::string& path) {
  types::SPIFFEID id;
  id.set_trust_domain(td);
  id.set_path(path);
  return id;
}

types::Entry SampleEntry(const std::string& id, const std::string& path) {
  types::Entry e;
  e.set_id(id);
  *e.mutable_spiffe_id() = Id("example.org", path);
  *e.mutable_parent_id() = Id("example.org", "/spire/agent/join_token/tok");
  auto* s = e.add_selectors();
  s->set_type("unix");
  s->set_value("uid:1000");
  e.set_revision_number(2);
  return e;
}

class CliTest : public ::testing::Test {
 protected:
  CliTest() : clock_(absl::FromUnixSeconds(kNow)), server_(clock_.Now()) {}

  // Runs a command against the fake server.
  Result Run(std::vector<std::string> args, const std::string& input = "") {
    args.push_back("-socketPath");
    args.push_back(server_.socket_path());
    return RunRaw(args, input);
  }

  Result RunRaw(const std::vector<std::string>& args, const std::string& input = "") {
    std::istringstream in(input);
    std::ostringstream out, err;
    CommandEnv env;
    env.in = &in;
    env.out = &out;
    env.err = &err;
    env.clock = &clock_;
    int code = RunCommandLine(args, env);
    return {code, out.str(), err.str()};
  }

  std::string TempPath(const std::string& name) { return server_.dir() + "/" + name; }

  void WriteTemp(const std::string& name, const std::string& data) {
    ASSERT_TRUE(WriteFileAtomic(TempPath(name), data, 0644).ok());
  }

  FakeClock clock_;
  testing::FakeServer server_;
};

// ---- dispatch, flags, errors ----

TEST_F(CliTest, NoArgumentsPrintsUsageAndFails) {
  Result r = RunRaw({});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("Usage: sigil-server <command>"));
  EXPECT_THAT(r.err, HasSubstr("entry create"));
  EXPECT_THAT(r.err, HasSubstr("localauthority x509 show"));
}

TEST_F(CliTest, HelpPrintsUsageAndSucceeds) {
  Result r = RunRaw({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("token generate"));
}

TEST_F(CliTest, UnknownCommandFails) {
  Result r = RunRaw({"frobnicate"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Unknown command: frobnicate\n"));
}

TEST_F(CliTest, GroupAloneListsItsSubcommands) {
  Result r = RunRaw({"entry"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("Usage: sigil-server entry <subcommand>"));
  EXPECT_THAT(r.err, HasSubstr("entry update"));
  EXPECT_THAT(r.err, Not(HasSubstr("agent list")));
}

TEST_F(CliTest, UnknownSubcommandIsNamed) {
  Result r = RunRaw({"localauthority", "x509", "rotate"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Unknown command: localauthority x509 rotate\n"));
  EXPECT_THAT(r.err, HasSubstr("localauthority x509 prepare"));
}

TEST_F(CliTest, CommandHelpShowsFlagsAndSucceeds) {
  Result r = RunRaw({"entry", "create", "-h"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("Creates registration entries"));
  EXPECT_THAT(r.err, HasSubstr("  -spiffeID string\n"));
  EXPECT_THAT(r.err, HasSubstr("  -selector value\n"));
  EXPECT_THAT(r.err, HasSubstr("(default \"/tmp/sigil-server/private/api.sock\")"));
  EXPECT_THAT(server_.entry.create.requests(), IsEmpty());
}

TEST_F(CliTest, IsClientCommandKnowsTheGroups) {
  for (const char* name : {"entry", "agent", "bundle", "token", "healthcheck", "x509", "jwt",
                           "localauthority"}) {
    EXPECT_TRUE(IsClientCommand(name)) << name;
  }
  for (const char* name : {"run", "validate", "create", "", "help"}) {
    EXPECT_FALSE(IsClientCommand(name)) << name;
  }
}

TEST_F(CliTest, UnknownFlagIsNamed) {
  Result r = Run({"entry", "show", "-bogus", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("flag provided but not defined: -bogus\nUsage of entry show:\n"));
  EXPECT_THAT(server_.entry.list.requests(), IsEmpty());
}

TEST_F(CliTest, FlagWithoutValueIsNamed) {
  Result r = RunRaw({"agent", "show", "-spiffeID"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("flag needs an argument: -spiffeID\n"));
}

TEST_F(CliTest, PositionalArgumentIsRejected) {
  Result r = Run({"entry", "show", "spiffe://example.org/web"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Error: unexpected argument \"spiffe://example.org/web\""));
}

TEST_F(CliTest, BadOutputFormatIsRejected) {
  Result r = Run({"entry", "count", "-output", "xml"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("invalid value \"xml\" for flag -output: bad formatter flag: "
                                "unknown format option: \"xml\"\n"));
}

TEST_F(CliTest, MissingSocketSaysServerIsNotRunning) {
  std::string path = server_.dir() + "/nowhere/api.sock";
  Result r = RunRaw({"entry", "count", "-socketPath", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error: the server is not running at " + path + ": the socket does not exist\n");
}

TEST_F(CliTest, StaleSocketSaysServerIsNotRunning) {
  std::string path = server_.dir() + "/stale.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);  // the file stays, nobody listens
  Result r = RunRaw({"agent", "count", "-socketPath", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Error: the server is not running at " + path +
                                ": connection refused"));
}

TEST_F(CliTest, SocketPathWithUriSpecialCharactersWorks) {
  // gRPC reads its target as a URI: '%', '?', '#' and spaces in the path
  // must reach the socket unchanged.
  std::string odd_dir = TempPath("we ird%41?#");
  ASSERT_EQ(symlink(server_.dir().c_str(), odd_dir.c_str()), 0);
  entryv1::CountEntriesResponse resp;
  resp.set_count(2);
  server_.entry.count.Respond(resp);
  Result r = RunRaw({"entry", "count", "-socketPath", odd_dir + "/api.sock"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "2 registration entries\n");
}

TEST_F(CliTest, RpcErrorIsPrintedLikeSpire) {
  server_.entry.count.Fail(grpc::StatusCode::PERMISSION_DENIED, "caller is not an admin");
  Result r = Run({"entry", "count"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "Error: rpc error: code = PermissionDenied desc = caller is not an admin\n");
}

TEST_F(CliTest, GoFlagSpellingsAllWork) {
  Result r = Run({"entry", "count", "--spiffeID", "spiffe://example.org/a", "-hint=web",
                  "--selector=unix:uid:1"});
  ASSERT_EQ(r.code, 0) << r.err;
  entryv1::CountEntriesRequest req = server_.entry.count.last();
  EXPECT_EQ(req.filter().by_spiffe_id().path(), "/a");
  EXPECT_EQ(req.filter().by_hint().value(), "web");
  EXPECT_EQ(req.filter().by_selectors().selectors(0).value(), "uid:1");
}

// ---- healthcheck ----

TEST_F(CliTest, HealthcheckServingIsHealthy) {
  health::HealthCheckResponse resp;
  resp.set_status(health::HealthCheckResponse::SERVING);
  server_.health.check.Respond(resp);
  Result r = Run({"healthcheck"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "Server is healthy.\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(server_.health.check.last().service(), "");
}

TEST_F(CliTest, HealthcheckNotServingIsUnhealthy) {
  health::HealthCheckResponse resp;
  resp.set_status(health::HealthCheckResponse::NOT_SERVING);
  server_.health.check.Respond(resp);
  Result r = Run({"healthcheck", "-shallow"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Server is unhealthy: server returned status \"NOT_SERVING\"\n");
}

TEST_F(CliTest, HealthcheckUnreachableIsUnhealthy) {
  std::string path = server_.dir() + "/none.sock";
  Result r = RunRaw({"healthcheck", "-socketPath", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Server is unhealthy: unable to determine health\n");
  r = RunRaw({"healthcheck", "-socketPath", path, "-verbose"});
  EXPECT_EQ(r.out, "Checking server health...\n");
  EXPECT_EQ(r.err, "Failed to check health: the server is not running at " + path +
                       ": the socket does not exist\nServer is unhealthy: unable to determine "
                       "health\n");
}

// ---- token generate ----

TEST_F(CliTest, TokenGenerateSendsTtlAndAgentId) {
  types::JoinToken token;
  token.set_value("4a7e0fa6");
  token.set_expires_at(kNow + 600);
  server_.agent.join_token.Respond(token);
  Result r = Run({"token", "generate", "-spiffeID", "spiffe://example.org/host1", "-ttl", "900"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Token: 4a7e0fa6\n");
  agentv1::CreateJoinTokenRequest req = server_.agent.join_token.last();
  EXPECT_EQ(req.ttl(), 900);
  EXPECT_EQ(req.agent_id().trust_domain(), "example.org");
  EXPECT_EQ(req.agent_id().path(), "/host1");
}

TEST_F(CliTest, TokenGenerateWithoutSpiffeIdWarns) {
  types::JoinToken token;
  token.set_value("tok");
  server_.agent.join_token.Respond(token);
  Result r = Run({"token", "generate"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Token: tok\nWarning: Missing SPIFFE ID.\n");
  agentv1::CreateJoinTokenRequest req = server_.agent.join_token.last();
  EXPECT_EQ(req.ttl(), 600);
  EXPECT_FALSE(req.has_agent_id());
}

TEST_F(CliTest, TokenGenerateJsonPrintsTheApiResponse) {
  types::JoinToken token;
  token.set_value("tok");
  token.set_expires_at(1767226200);
  server_.agent.join_token.Respond(token);
  Result r = Run({"token", "generate", "-output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"expires_at\":\"1767226200\",\"value\":\"tok\"}\n");
}

TEST_F(CliTest, TokenGenerateRejectsBadInput) {
  Result r = Run({"token", "generate", "-spiffeID", "example.org/host"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Error: SPIFFE ID \"example.org/host\" is not a valid SPIFFE ID"));
  r = Run({"token", "generate", "-ttl", "-1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("-ttl must be between 0 and"));
  EXPECT_THAT(server_.agent.join_token.requests(), IsEmpty());
}

// ---- entry create / update / delete / show / count ----

TEST_F(CliTest, EntryCreateSendsTheEntryTheFlagsDescribe) {
  entryv1::BatchCreateEntryResponse resp;
  auto* result = resp.add_results();
  types::Entry created = SampleEntry("e-1", "/web");
  created.set_x509_svid_ttl(3600);
  created.add_dns_names("web.example.org");
  created.set_admin(true);
  created.set_expires_at(1767225600);
  created.set_hint("blue");
  *result->mutable_entry() = created;
  server_.entry.create.Respond(resp);

  Result r = Run({"entry", "create", "-spiffeID", "spiffe://example.org/web", "-parentID",
                  "spiffe://example.org/spire/agent/join_token/tok", "-selector", "unix:uid:1000",
                  "-selector", "k8s:ns:default", "-x509SVIDTTL", "3600", "-jwtSVIDTTL", "300",
                  "-dns", "web.example.org", "-federatesWith", "spiffe://other.org",
                  "-federatesWith", "third.org", "-admin", "-downstream", "-storeSVID", "-hint",
                  "blue", "-entryExpiry", "1767225600", "-entryID", "custom-id"});
  ASSERT_EQ(r.code, 0) << r.err;
  entryv1::BatchCreateEntryRequest req = server_.entry.create.last();
  ASSERT_EQ(req.entries_size(), 1);
  const types::Entry& e = req.entries(0);
  EXPECT_EQ(e.id(), "custom-id");
  EXPECT_EQ(apitypes::SpiffeIdString(e.spiffe_id()), "spiffe://example.org/web");
  EXPECT_EQ(apitypes::SpiffeIdString(e.parent_id()), "spiffe://example.org/spire/agent/join_token/tok");
  ASSERT_EQ(e.selectors_size(), 2);
  EXPECT_EQ(e.selectors(1).type(), "k8s");
  EXPECT_EQ(e.selectors(1).value(), "ns:default");
  EXPECT_EQ(e.x509_svid_ttl(), 3600);
  EXPECT_EQ(e.jwt_svid_ttl(), 300);
  EXPECT_THAT(e.dns_names(), ElementsAre("web.example.org"));
  EXPECT_THAT(e.federates_with(), ElementsAre("other.org", "third.org"));
  EXPECT_TRUE(e.admin());
  EXPECT_TRUE(e.downstream());
  EXPECT_TRUE(e.store_svid());
  EXPECT_EQ(e.hint(), "blue");
  EXPECT_EQ(e.expires_at(), 1767225600);

  EXPECT_EQ(r.out,
            "Entry ID         : e-1\n"
            "SPIFFE ID        : spiffe://example.org/web\n"
            "Parent ID        : spiffe://example.org/spire/agent/join_token/tok\n"
            "Revision         : 2\n"
            "X509-SVID TTL    : 3600\n"
            "JWT-SVID TTL     : default\n"
            "Expiration time  : 2026-01-01 00:00:00 +0000 UTC\n"
            "Selector         : unix:uid:1000\n"
            "DNS name         : web.example.org\n"
            "Admin            : true\n"
            "Hint             : blue\n"
            "\n");
}

TEST_F(CliTest, EntryCreateNodeEntryIsParentedByTheServer) {
  entryv1::BatchCreateEntryResponse resp;
  *resp.add_results()->mutable_entry() = SampleEntry("n-1", "/nodes/all");
  server_.entry.create.Respond(resp);
  Result r = Run({"entry", "create", "-node", "-spiffeID", "spiffe://example.org/nodes/all",
                  "-selector", "join_token:tok"});
  ASSERT_EQ(r.code, 0) << r.err;
  const types::Entry e = server_.entry.create.last().entries(0);
  EXPECT_EQ(apitypes::SpiffeIdString(e.parent_id()), "spiffe://example.org/spire/server");
}

TEST_F(CliTest, EntryCreateDeprecatedTtlSetsX509Ttl) {
  entryv1::BatchCreateEntryResponse resp;
  *resp.add_results()->mutable_entry() = SampleEntry("e-1", "/web");
  server_.entry.create.Respond(resp);
  Result r = Run({"entry", "create", "-spiffeID", "spiffe://example.org/web", "-parentID",
                  "spiffe://example.org/p", "-selector", "unix:uid:1", "-ttl", "120"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.entry.create.last().entries(0).x509_svid_ttl(), 120);
  EXPECT_EQ(server_.entry.create.last().entries(0).jwt_svid_ttl(), 0);
}

TEST_F(CliTest, EntryCreateValidatesEveryRequiredFlag) {
  const std::vector<std::string> id = {"-spiffeID", "spiffe://example.org/web"};
  const std::vector<std::string> parent = {"-parentID", "spiffe://example.org/p"};
  const std::vector<std::string> sel = {"-selector", "unix:uid:1"};
  auto cat = [](std::initializer_list<std::vector<std::string>> parts) {
    std::vector<std::string> out = {"entry", "create"};
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {cat({id, parent}), "at least one selector is required"},
      {cat({id, sel, {"-node", "-federatesWith", "other.org"}}), "node entries can not federate"},
      {cat({id, sel}), "a parent ID is required if the node flag is not set"},
      {cat({parent, sel}), "a SPIFFE ID is required"},
      {cat({id, parent, sel, {"-ttl", "-1"}}), "a positive TTL is required"},
      {cat({id, parent, sel, {"-x509SVIDTTL", "-1"}}), "a positive x509-SVID TTL is required"},
      {cat({id, parent, sel, {"-jwtSVIDTTL", "-5"}}), "a positive JWT-SVID TTL is required"},
      {cat({id, parent, sel, {"-ttl", "5", "-x509SVIDTTL", "6"}}),
       "use x509SVIDTTL and jwtSVIDTTL flags or the deprecated ttl flag"},
      {cat({id, parent, sel, {"-x509SVIDTTL", "3000000000"}}),
       "-x509SVIDTTL is too large: at most 2147483647 seconds"},
      {cat({id, parent, {"-selector", "unix"}}), "selector \"unix\" must be formatted as type:value"},
      {cat({{"-spiffeID", "web"}, parent, sel}), "SPIFFE ID \"web\" is not a valid SPIFFE ID"},
      {cat({id, {"-parentID", "spiffe://Example.org/p"}, sel}),
       "parent ID \"spiffe://Example.org/p\" is not a valid SPIFFE ID"},
      {cat({id, parent, sel, {"-federatesWith", "spiffe://other.org/path"}}),
       "\"spiffe://other.org/path\" is not a trust domain"},
  };
  for (const Case& c : cases) {
    Result r = Run(c.args);
    EXPECT_EQ(r.code, 1) << c.error;
    EXPECT_THAT(r.err, StartsWith("Error: " + c.error)) << c.error;
  }
  EXPECT_THAT(server_.entry.create.requests(), IsEmpty());
}

TEST_F(CliTest, EntryCreateFailedItemPrintsItsStatusAndFails) {
  entryv1::BatchCreateEntryResponse resp;
  auto* ok = resp.add_results();
  *ok->mutable_entry() = SampleEntry("e-1", "/a");
  auto* failed = resp.add_results();
  failed->mutable_status()->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  failed->mutable_status()->set_message("failed to convert entry: bad \"hint\"");
  server_.entry.create.Respond(resp);

  std::string data = R"({"entries":[
    {"spiffe_id":"spiffe://example.org/a","parent_id":"spiffe://example.org/p",
     "selectors":[{"type":"unix","value":"uid:1"}]},
    {"spiffe_id":"spiffe://example.org/b","parent_id":"spiffe://example.org/p",
     "selectors":[{"type":"unix","value":"uid:2"}]}]})";
  WriteTemp("entries.json", data);
  Result r = Run({"entry", "create", "-data", TempPath("entries.json")});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, StartsWith("Entry ID         : e-1\n"));
  EXPECT_EQ(r.err,
            "Failed to create the following entry (code: InvalidArgument, msg: \"failed to "
            "convert entry: bad \\\"hint\\\"\"):\n"
            "Entry ID         : (none)\n"
            "SPIFFE ID        : spiffe://example.org/b\n"
            "Parent ID        : spiffe://example.org/p\n"
            "Revision         : 0\n"
            "X509-SVID TTL    : default\n"
            "JWT-SVID TTL     : default\n"
            "Selector         : unix:uid:2\n"
            "\n"
            "Error: failed to create one or more entries\n");
  EXPECT_EQ(server_.entry.create.last().entries_size(), 2);
}

TEST_F(CliTest, EntryCreateReadsDataFromStdin) {
  entryv1::BatchCreateEntryResponse resp;
  *resp.add_results()->mutable_entry() = SampleEntry("e-1", "/a");
  server_.entry.create.Respond(resp);
  Result r = Run({"entry", "create", "-data", "-"},
                 R"({"entries":[{"spiffe_id":"spiffe://example.org/a",
                     "parent_id":"spiffe://example.org/p","x509_svid_ttl":60,
                     "selectors":[{"type":"unix","value":"uid:1"}]}]})");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.entry.create.last().entries(0).x509_svid_ttl(), 60);
}

TEST_F(CliTest, EntryCreateDataRejectsOtherEntryFlags) {
  WriteTemp("e.json", R"({"entries":[]})");
  Result r = Run({"entry", "create", "-data", TempPath("e.json"), "-spiffeID",
                  "spiffe://example.org/a", "-admin"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Error: the -data flag can't be combined with other entry flags "
                                "(-spiffeID, -admin)"));
}

TEST_F(CliTest, EntryCreateDataErrorsNameTheFileAndPosition) {
  WriteTemp("bad.json", R"({"entries":[{"spiffe_id":"spiffe://example.org/a","ttl":5}]})");
  Result r = Run({"entry", "create", "-data", TempPath("bad.json")});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error: cannot parse " + TempPath("bad.json") +
                       ": entries[0]: unknown field \"ttl\"\n");
  r = Run({"entry", "create", "-data", TempPath("missing.json")});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Error: cannot read " + TempPath("missing.json")));
  WriteTemp("empty.json", R"({"entries":[]})");
  r = Run({"entry", "create", "-data", TempPath("empty.json")});
  EXPECT_EQ(r.err, "Error: " + TempPath("empty.json") + " holds no entries\n");
}

TEST_F(CliTest, EntryCreateJsonPrintsTheResponse) {
  entryv1::BatchCreateEntryResponse resp;
  auto* result = resp.add_results();
  result->mutable_status()->set_message("OK");
  result->mutable_entry()->set_id("e-1");
  server_.entry.create.Respond(resp);
  Result r = Run({"entry", "create", "-output", "json", "-spiffeID", "spiffe://example.org/a",
                  "-parentID", "spiffe://example.org/p", "-selector", "a:b"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, ProtoToJson(resp) + "\n");
  // Keys sorted, as spire-server prints them: "entry" before "status".
  EXPECT_THAT(r.out, StartsWith("{\"results\":[{\"entry\":{\"admin\":false,"));
  EXPECT_THAT(r.out, HasSubstr(",\"id\":\"e-1\","));
  EXPECT_THAT(r.out, EndsWith("},\"status\":{\"code\":0,\"message\":\"OK\"}}]}\n"));
}

TEST_F(CliTest, EntryUpdateValidatesEveryRequiredFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<std::string> base = {"entry", "update"};
  const std::vector<Case> cases = {
      {{"-spiffeID", "spiffe://e.org/a", "-parentID", "spiffe://e.org/p", "-selector", "a:b"},
       "entry ID is required"},
      {{"-entryID", "x", "-spiffeID", "spiffe://e.org/a", "-parentID", "spiffe://e.org/p"},
       "at least one selector is required"},
      {{"-entryID", "x", "-spiffeID", "spiffe://e.org/a", "-selector", "a:b"},
       "a parent ID is required"},
      {{"-entryID", "x", "-parentID", "spiffe://e.org/p", "-selector", "a:b"},
       "a SPIFFE ID is required"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = base;
    args.insert(args.end(), c.args.begin(), c.args.end());
    Result r = Run(args);
    EXPECT_EQ(r.code, 1) << c.error;
    EXPECT_EQ(r.err, "Error: " + c.error + "\n");
  }
  EXPECT_THAT(server_.entry.update.requests(), IsEmpty());
}

TEST_F(CliTest, EntryUpdateSendsTheWholeEntry) {
  entryv1::BatchUpdateEntryResponse resp;
  *resp.add_results()->mutable_entry() = SampleEntry("e-9", "/web");
  server_.entry.update.Respond(resp);
  Result r = Run({"entry", "update", "-entryID", "e-9", "-spiffeID", "spiffe://example.org/web",
                  "-parentID", "spiffe://example.org/p", "-selector", "unix:uid:1000",
                  "-jwtSVIDTTL", "60", "-hint", "h"});
  ASSERT_EQ(r.code, 0) << r.err;
  const types::Entry e = server_.entry.update.last().entries(0);
  EXPECT_EQ(e.id(), "e-9");
  EXPECT_EQ(e.jwt_svid_ttl(), 60);
  EXPECT_EQ(e.hint(), "h");
  EXPECT_FALSE(server_.entry.update.last().has_input_mask());
  EXPECT_THAT(r.out, StartsWith("Entry ID         : e-9\n"));
}

TEST_F(CliTest, EntryUpdateDataNeedsEntryIds) {
  WriteTemp("u.json", R"({"entries":[{"spiffe_id":"spiffe://example.org/a",
                         "parent_id":"spiffe://example.org/p"}]})");
  Result r = Run({"entry", "update", "-data", TempPath("u.json")});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error: entries[0]: an entry ID is required to update an entry\n");
}

TEST_F(CliTest, EntryUpdateFailedItemFails) {
  entryv1::BatchUpdateEntryResponse resp;
  auto* failed = resp.add_results();
  failed->mutable_status()->set_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  failed->mutable_status()->set_message("entry not found");
  server_.entry.update.Respond(resp);
  Result r = Run({"entry", "update", "-entryID", "gone", "-spiffeID", "spiffe://example.org/web",
                  "-parentID", "spiffe://example.org/p", "-selector", "unix:uid:1000"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Failed to update the following entry (code: NotFound, msg: "
                                "\"entry not found\"):\nEntry ID         : gone\n"));
  EXPECT_THAT(r.err, HasSubstr("Error: failed to update one or more entries\n"));
}

TEST_F(CliTest, EntryDeleteRequiresAnId) {
  Result r = Run({"entry", "delete"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error: an entry ID is required\n");
}

TEST_F(CliTest, EntryDeleteReportsTheOutcome) {
  entryv1::BatchDeleteEntryResponse resp;
  resp.add_results()->set_id("e-1");
  server_.entry.remove.Respond(resp);
  Result r = Run({"entry", "delete", "-entryID", "e-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Deleted entry with ID: e-1\n");
  EXPECT_THAT(server_.entry.remove.last().ids(), ElementsAre("e-1"));

  resp.mutable_results(0)->mutable_status()->set_code(5);
  resp.mutable_results(0)->mutable_status()->set_message("entry not found");
  server_.entry.remove.Respond(resp);
  r = Run({"entry", "delete", "-entryID", "e-1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "Error: failed to delete entry: entry not found\n");
}

TEST_F(CliTest, EntryShowByIdUsesGetEntry) {
  server_.entry.get.Respond(SampleEntry("e-1", "/web"));
  Result r = Run({"entry", "show", "-entryID", "e-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.entry.get.last().id(), "e-1");
  EXPECT_THAT(server_.entry.list.requests(), IsEmpty());
  EXPECT_THAT(r.out, StartsWith("Found 1 entry\nEntry ID         : e-1\n"));
}

TEST_F(CliTest, EntryShowByIdReportsLookupErrors) {
  server_.entry.get.Fail(grpc::StatusCode::NOT_FOUND, "entry not found");
  Result r = Run({"entry", "show", "-entryID", "e-1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error: error fetching entry ID e-1: rpc error: code = NotFound desc = entry not "
            "found\n");
  r = Run({"entry", "show", "-entryID", "e-1", "-spiffeID", "spiffe://example.org/a"});
  EXPECT_EQ(r.err, "Error: the -entryID flag can't be combined with others\n");
}

TEST_F(CliTest, EntryShowFiltersPagesAndSorts) {
  entryv1::ListEntriesResponse page1, page2;
  *page1.add_entries() = SampleEntry("e-3", "/zeta");
  *page1.add_entries() = SampleEntry("e-1", "/alpha");
  page1.set_next_page_token("p2");
  *page2.add_entries() = SampleEntry("e-2", "/beta");
  server_.entry.list.RespondPages({page1, page2});

  Result r = Run({"entry", "show", "-spiffeID", "spiffe://example.org/web", "-parentID",
                  "spiffe://example.org/p", "-selector", "unix:uid:1000", "-selector",
                  "unix:gid:0", "-matchSelectorsOn", "subset", "-federatesWith",
                  "spiffe://other.org", "-matchFederatesWithOn", "exact", "-hint", "blue"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<entryv1::ListEntriesRequest> reqs = server_.entry.list.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].page_token(), "");
  EXPECT_EQ(reqs[1].page_token(), "p2");
  EXPECT_EQ(reqs[0].page_size(), 500);
  const auto& f = reqs[0].filter();
  EXPECT_EQ(apitypes::SpiffeIdString(f.by_spiffe_id()), "spiffe://example.org/web");
  EXPECT_EQ(apitypes::SpiffeIdString(f.by_parent_id()), "spiffe://example.org/p");
  EXPECT_EQ(f.by_selectors().selectors_size(), 2);
  EXPECT_EQ(f.by_selectors().match(), types::SelectorMatch::MATCH_SUBSET);
  EXPECT_THAT(f.by_federates_with().trust_domains(), ElementsAre("other.org"));
  EXPECT_EQ(f.by_federates_with().match(), types::FederatesWithMatch::MATCH_EXACT);
  EXPECT_EQ(f.by_hint().value(), "blue");
  EXPECT_FALSE(f.has_by_downstream());

  std::vector<std::string> ids;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::StartsWith(line, "Entry ID")) ids.emplace_back(line.substr(19));
  }
  EXPECT_THAT(r.out, StartsWith("Found 3 entries\n"));
  EXPECT_THAT(ids, ElementsAre("e-1", "e-2", "e-3"));
}

TEST_F(CliTest, EntryShowDefaultsAndDownstreamFilter) {
  Result r = Run({"entry", "show", "-selector", "a:b", "-downstream"});
  ASSERT_EQ(r.code, 0) << r.err;
  const entryv1::ListEntriesRequest req = server_.entry.list.last();
  const auto& f = req.filter();
  EXPECT_EQ(f.by_selectors().match(), types::SelectorMatch::MATCH_SUPERSET);
  EXPECT_TRUE(f.has_by_downstream());
  EXPECT_TRUE(f.by_downstream().value());
  EXPECT_EQ(r.out, "Found 0 entries\n");
}

TEST_F(CliTest, EntryShowRejectsUnknownMatchBehavior) {
  Result r = Run({"entry", "show", "-selector", "a:b", "-matchSelectorsOn", "most"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error: match behavior \"most\" unknown\n");
  EXPECT_THAT(server_.entry.list.requests(), IsEmpty());
}

TEST_F(CliTest, EntryShowJsonMergesPages) {
  entryv1::ListEntriesResponse page1, page2;
  *page1.add_entries() = SampleEntry("e-1", "/a");
  page1.set_next_page_token("p2");
  *page2.add_entries() = SampleEntry("e-2", "/b");
  server_.entry.list.RespondPages({page1, page2});
  Result r = Run({"entry", "show", "-output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  entryv1::ListEntriesResponse merged;
  *merged.add_entries() = SampleEntry("e-1", "/a");
  *merged.add_entries() = SampleEntry("e-2", "/b");
  EXPECT_EQ(r.out, ProtoToJson(merged) + "\n");
}

TEST_F(CliTest, EntryCountPrintsAPluralizedCount) {
  entryv1::CountEntriesResponse resp;
  resp.set_count(3);
  server_.entry.count.Respond(resp);
  Result r = Run({"entry", "count"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "3 registration entries\n");
  EXPECT_FALSE(server_.entry.count.last().filter().has_by_downstream());
  resp.set_count(1);
  server_.entry.count.Respond(resp);
  EXPECT_EQ(Run({"entry", "count"}).out, "1 registration entry\n");
  EXPECT_EQ(Run({"entry", "count", "-output", "json"}).out, "{\"count\":1}\n");
}

// ---- agent ----

types::Agent SampleAgent(const std::string& name, bool banned) {
  types::Agent a;
  *a.mutable_id() = Id("example.org", "/spire/agent/join_token/" + name);
  a.set_attestation_type("join_token");
  a.set_x509svid_serial_number(banned ? "" : "1234");
  a.set_x509svid_expires_at(kNow + 3600);
  a.set_banned(banned);
  a.set_can_reattest(!banned);
  auto* s = a.add_selectors();
  s->set_type("join_token");
  s->set_value(name);
  return a;
}

TEST_F(CliTest, AgentListPrintsEveryAgent) {
  agentv1::ListAgentsResponse resp;
  *resp.add_agents() = SampleAgent("a", false);
  *resp.add_agents() = SampleAgent("b", true);
  server_.agent.list.Respond(resp);
  Result r = Run({"agent", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Found 2 attested agents:\n\n"
            "SPIFFE ID         : spiffe://example.org/spire/agent/join_token/a\n"
            "Attestation type  : join_token\n"
            "Expiration time   : 2026-01-01 01:00:00 +0000 UTC\n"
            "Serial number     : 1234\n"
            "Can re-attest     : true\n\n"
            "SPIFFE ID         : spiffe://example.org/spire/agent/join_token/b\n"
            "Attestation type  : join_token\n"
            "Expiration time   : 2026-01-01 01:00:00 +0000 UTC\n"
            "Banned            : true\n"
            "Can re-attest     : false\n\n");
  EXPECT_EQ(server_.agent.list.last().page_size(), 1000);
}

TEST_F(CliTest, AgentListEmpty) {
  Result r = Run({"agent", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "No attested agents found\n");
}

TEST_F(CliTest, AgentListSendsFilters) {
  Result r = Run({"agent", "list", "-attestationType", "x509pop", "-banned", "true",
                  "-canReattest", "false", "-selector", "x509pop:subject:cn:a",
                  "-matchSelectorsOn", "any", "-expiresBefore", "2026-02-01 00:00:00 +0000 +00"});
  ASSERT_EQ(r.code, 0) << r.err;
  const agentv1::ListAgentsRequest req = server_.agent.list.last();
  const auto& f = req.filter();
  EXPECT_EQ(f.by_attestation_type(), "x509pop");
  EXPECT_TRUE(f.has_by_banned());
  EXPECT_TRUE(f.by_banned().value());
  EXPECT_TRUE(f.has_by_can_reattest());
  EXPECT_FALSE(f.by_can_reattest().value());
  EXPECT_EQ(f.by_selector_match().match(), types::SelectorMatch::MATCH_ANY);
  EXPECT_EQ(f.by_selector_match().selectors(0).value(), "subject:cn:a");
  EXPECT_EQ(f.by_expires_before(), "2026-02-01 00:00:00 +0000 +00");

  // Any other value of the tri-state flags lists everything.
  r = Run({"agent", "list", "-banned", "all"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(server_.agent.list.last().filter().has_by_banned());
}

TEST_F(CliTest, AgentListRejectsBadFilters) {
  Result r = Run({"agent", "list", "-expiresBefore", "tomorrow"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Error: date is not valid: \"tomorrow\""));
  r = Run({"agent", "list", "-matchSelectorsOn", "best"});
  EXPECT_THAT(r.err, StartsWith("Error: unsupported match behavior \"best\""));
  EXPECT_THAT(server_.agent.list.requests(), IsEmpty());
}

TEST_F(CliTest, AgentCountPrintsAPluralizedCount) {
  agentv1::CountAgentsResponse resp;
  resp.set_count(2);
  server_.agent.count.Respond(resp);
  Result r = Run({"agent", "count", "-attestationType", "join_token"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "2 attested agents\n");
  EXPECT_EQ(server_.agent.count.last().filter().by_attestation_type(), "join_token");
}

TEST_F(CliTest, AgentShowPrintsTheAgentAndItsSelectors) {
  server_.agent.get.Respond(SampleAgent("a", false));
  Result r = Run({"agent", "show", "-spiffeID", "spiffe://example.org/spire/agent/join_token/a"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(apitypes::SpiffeIdString(server_.agent.get.last().id()), "spiffe://example.org/spire/agent/join_token/a");
  EXPECT_THAT(r.out, StartsWith("Found an attested agent given its SPIFFE ID\n\nSPIFFE ID"));
  EXPECT_THAT(r.out, HasSubstr("Can re-attest     : true\n\nSelectors         : join_token:a\n"));
}

TEST_F(CliTest, AgentCommandsRequireASpiffeId) {
  for (const char* cmd : {"show", "evict", "ban"}) {
    Result r = Run({"agent", cmd});
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_EQ(r.err, "Error: a SPIFFE ID is required\n") << cmd;
  }
}

TEST_F(CliTest, AgentEvictOnlyEvictsAgents) {
  Result r = Run({"agent", "evict", "-spiffeID", "spiffe://example.org/web"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Error: \"spiffe://example.org/web\" is not an agent SPIFFE ID"));
  EXPECT_THAT(server_.agent.remove.requests(), IsEmpty());

  r = Run({"agent", "evict", "-spiffeID", "spiffe://example.org/spire/agent/x509pop/abc"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Agent evicted successfully\n");
  EXPECT_EQ(server_.agent.remove.last().id().path(), "/spire/agent/x509pop/abc");

  server_.agent.remove.Fail(grpc::StatusCode::NOT_FOUND, "agent not found");
  r = Run({"agent", "evict", "-spiffeID", "spiffe://example.org/spire/agent/x509pop/abc"});
  EXPECT_EQ(r.err,
            "Error: failed to evict agent: rpc error: code = NotFound desc = agent not found\n");
}

TEST_F(CliTest, AgentBan) {
  Result r = Run({"agent", "ban", "-spiffeID", "spiffe://example.org/spire/agent/x509pop/abc"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Agent banned successfully\n");
  EXPECT_EQ(server_.agent.ban.last().id().path(), "/spire/agent/x509pop/abc");
  r = Run({"agent", "ban", "-output", "json", "-spiffeID", "spiffe://example.org/spire/agent/a"});
  EXPECT_EQ(r.out, "{}\n");
}

// ---- bundle ----

TEST_F(CliTest, BundleShowPrintsPemByDefault) {
  Result r = Run({"bundle", "show"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, server_.ca().ToPem());
}

TEST_F(CliTest, BundleShowSpiffeFormatIsABundleDocument) {
  types::Bundle b;
  b.set_trust_domain("example.org");
  b.add_x509_authorities()->set_asn1(server_.ca().der());
  auto* jwt = b.add_jwt_authorities();
  jwt->set_key_id("kid-1");
  jwt->set_public_key(server_.ca().public_key().spki_der());
  b.set_refresh_hint(300);
  b.set_sequence_number(7);
  server_.bundle.get.Respond(b);

  Result r = Run({"bundle", "show", "-format", "spiffe"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\n    \"keys\": ["));
  absl::StatusOr<spiffe::Bundle> parsed =
      spiffe::Bundle::ParseSpiffeJson(spiffe::TrustDomain::FromString("example.org").value(), r.out);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->x509_authorities().size(), 1u);
  EXPECT_EQ(parsed->x509_authorities()[0].der(), server_.ca().der());
  ASSERT_NE(parsed->FindJwtAuthority("kid-1"), nullptr);
  EXPECT_EQ(parsed->sequence_number(), 7u);
  EXPECT_EQ(parsed->refresh_hint(), absl::Seconds(300));
}

TEST_F(CliTest, BundleShowRejectsUnknownFormat) {
  Result r = Run({"bundle", "show", "-format", "der"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error: invalid format: \"der\"\n");
}

TEST_F(CliTest, BundleShowJsonPrintsTheApiBundle) {
  Result r = Run({"bundle", "show", "-output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("{\"jwt_authorities\":["));
  EXPECT_THAT(r.out, EndsWith("\"trust_domain\":\"example.org\",\"x509_authorities\":[{\"asn1\":\"" +
                              crypto::Base64Encode(server_.ca().der()) + "\",\"tainted\":false}]}\n"));
}

TEST_F(CliTest, BundleListPrintsEachFederatedBundleWithAHeader) {
  bundlev1::ListFederatedBundlesResponse resp;
  for (const char* td : {"one.org", "two.org"}) {
    types::Bundle* b = resp.add_bundles();
    b->set_trust_domain(td);
    b->add_x509_authorities()->set_asn1(server_.ca().der());
  }
  server_.bundle.list.Respond(resp);
  Result r = Run({"bundle", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string pem = server_.ca().ToPem();
  EXPECT_EQ(r.out,
            "****************************************\n* one.org\n"
            "****************************************\n" +
                pem +
                "\n****************************************\n* two.org\n"
                "****************************************\n" +
                pem);
}

TEST_F(CliTest, BundleListByIdAsksForOneTrustDomain) {
  types::Bundle b;
  b.set_trust_domain("other.org");
  b.add_x509_authorities()->set_asn1(server_.ca().der());
  server_.bundle.get_federated.Respond(b);
  Result r = Run({"bundle", "list", "-id", "spiffe://other.org"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.bundle.get_federated.last().trust_domain(), "other.org");
  EXPECT_EQ(r.out, server_.ca().ToPem());
}

TEST_F(CliTest, BundleSetPemFromFile) {
  bundlev1::BatchSetFederatedBundleResponse resp;
  resp.add_results();
  server_.bundle.set.Respond(resp);
  WriteTemp("other.pem", server_.ca().ToPem());
  Result r = Run({"bundle", "set", "-id", "spiffe://other.org", "-path", TempPath("other.pem")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "bundle set.\n");
  bundlev1::BatchSetFederatedBundleRequest req = server_.bundle.set.last();
  ASSERT_EQ(req.bundle_size(), 1);
  EXPECT_EQ(req.bundle(0).trust_domain(), "other.org");
  ASSERT_EQ(req.bundle(0).x509_authorities_size(), 1);
  EXPECT_EQ(req.bundle(0).x509_authorities(0).asn1(), server_.ca().der());
}

TEST_F(CliTest, BundleSetSpiffeFromStdin) {
  bundlev1::BatchSetFederatedBundleResponse resp;
  resp.add_results();
  server_.bundle.set.Respond(resp);
  spiffe::Bundle doc(spiffe::TrustDomain::FromString("other.org").value());
  doc.AddX509Authority(server_.ca());
  ASSERT_TRUE(doc.AddJwtAuthority({"kid-9", server_.ca().public_key(), absl::InfinitePast()}).ok());
  doc.set_sequence_number(3);
  Result r = Run({"bundle", "set", "-id", "other.org", "-format", "spiffe"}, doc.ToSpiffeJson());
  ASSERT_EQ(r.code, 0) << r.err;
  const types::Bundle b = server_.bundle.set.last().bundle(0);
  EXPECT_EQ(b.trust_domain(), "other.org");
  EXPECT_EQ(b.x509_authorities_size(), 1);
  ASSERT_EQ(b.jwt_authorities_size(), 1);
  EXPECT_EQ(b.jwt_authorities(0).key_id(), "kid-9");
  EXPECT_EQ(b.sequence_number(), 3u);
}

TEST_F(CliTest, BundleSetRejectsBadInput) {
  Result r = Run({"bundle", "set", "-path", "x"});
  EXPECT_EQ(r.err, "Error: id flag is required\n");
  r = Run({"bundle", "set", "-id", "other.org"}, "not a pem");
  EXPECT_THAT(r.err, StartsWith("Error: unable to parse bundle data: "));
  r = Run({"bundle", "set", "-id", "other.org", "-format", "spiffe"}, "{}");
  EXPECT_THAT(r.err, StartsWith("Error: unable to parse to spiffe bundle: "));
  r = Run({"bundle", "set", "-id", "other.org", "-path", TempPath("none.pem")});
  EXPECT_THAT(r.err, StartsWith("Error: unable to load bundle data: cannot read "));
  EXPECT_THAT(server_.bundle.set.requests(), IsEmpty());
}

TEST_F(CliTest, BundleSetReportsAFailedItem) {
  bundlev1::BatchSetFederatedBundleResponse resp;
  auto* result = resp.add_results();
  result->mutable_status()->set_code(3);
  result->mutable_status()->set_message("bundle is for this server's own trust domain");
  server_.bundle.set.Respond(resp);
  Result r = Run({"bundle", "set", "-id", "example.org"}, server_.ca().ToPem());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error: failed to set federated bundle: bundle is for this server's own trust domain\n");
}

TEST_F(CliTest, BundleDeleteModes) {
  bundlev1::BatchDeleteFederatedBundleResponse resp;
  resp.add_results()->set_trust_domain("other.org");
  server_.bundle.remove.Respond(resp);
  Result r = Run({"bundle", "delete", "-id", "spiffe://other.org"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "bundle deleted.\n");
  EXPECT_EQ(server_.bundle.remove.last().mode(), bundlev1::BatchDeleteFederatedBundleRequest::RESTRICT);
  EXPECT_THAT(server_.bundle.remove.last().trust_domains(), ElementsAre("other.org"));
  ASSERT_EQ(Run({"bundle", "delete", "-id", "other.org", "-mode", "dissociate"}).code, 0);
  EXPECT_EQ(server_.bundle.remove.last().mode(),
            bundlev1::BatchDeleteFederatedBundleRequest::DISSOCIATE);
  ASSERT_EQ(Run({"bundle", "delete", "-id", "other.org", "-mode", "delete"}).code, 0);
  EXPECT_EQ(server_.bundle.remove.last().mode(), bundlev1::BatchDeleteFederatedBundleRequest::DELETE);

  r = Run({"bundle", "delete", "-id", "other.org", "-mode", "purge"});
  EXPECT_THAT(r.err, StartsWith("Error: unsupported mode \"purge\""));
  r = Run({"bundle", "delete"});
  EXPECT_EQ(r.err, "Error: id is required\n");

  resp.mutable_results(0)->mutable_status()->set_code(9);
  resp.mutable_results(0)->mutable_status()->set_message("bundle is still used by entries");
  server_.bundle.remove.Respond(resp);
  r = Run({"bundle", "delete", "-id", "other.org"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error: failed to delete federated bundle \"other.org\": bundle is still used by "
            "entries\n");
}

TEST_F(CliTest, BundleCount) {
  bundlev1::CountBundlesResponse resp;
  resp.set_count(1);
  server_.bundle.count.Respond(resp);
  Result r = Run({"bundle", "count"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1 bundle\n");
}

// ---- x509 mint / jwt mint ----

// Splits `x509 mint` output into its three PEM sections.
struct MintOutput {
  std::string svid, key, roots;
};
MintOutput SplitMintOutput(const std::string& out) {
  MintOutput m;
  size_t a = out.find("X509-SVID:\n"), b = out.find("Private key:\n"), c = out.find("Root CAs:\n");
  if (a == std::string::npos || b == std::string::npos || c == std::string::npos) return m;
  m.svid = out.substr(a + 11, b - a - 11);
  m.key = out.substr(b + 13, c - b - 13);
  m.roots = out.substr(c + 10);
  return m;
}

TEST_F(CliTest, X509MintPrintsAWorkingSvidKeyAndRoots) {
  Result r = Run({"x509", "mint", "-spiffeID", "spiffe://example.org/workload", "-ttl", "30m"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  svidv1::MintX509SVIDRequest req = server_.svid->x509.last();
  EXPECT_EQ(req.ttl(), 1800);

  MintOutput m = SplitMintOutput(r.out);
  absl::StatusOr<std::vector<crypto::Certificate>> chain = crypto::Certificate::ParsePemChain(m.svid);
  ASSERT_TRUE(chain.ok()) << chain.status();
  absl::StatusOr<crypto::PrivateKey> key = crypto::PrivateKey::FromPem(m.key);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_THAT(m.key, StartsWith("-----BEGIN PRIVATE KEY-----\n"));
  absl::StatusOr<std::vector<crypto::Certificate>> roots =
      crypto::Certificate::ParsePemChain(m.roots);
  ASSERT_TRUE(roots.ok()) << roots.status();

  EXPECT_EQ((*chain)[0].public_key(), key->public_key());
  EXPECT_THAT((*chain)[0].uri_sans(), ElementsAre("spiffe://example.org/workload"));
  EXPECT_TRUE(crypto::VerifyChain(*chain, *roots, clock_.Now()).ok());
}

TEST_F(CliTest, X509MintPutsDnsNamesInTheCsr) {
  Result r = Run({"x509", "mint", "-spiffeID", "spiffe://example.org/w", "-dns", "w.example.org", "-dns",
                  "x.example.org"});
  ASSERT_EQ(r.code, 0) << r.err;
  absl::StatusOr<crypto::CertificateRequest> csr =
      crypto::CertificateRequest::FromDer(server_.svid->x509.last().csr());
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_THAT(csr->dns_sans(), ElementsAre("w.example.org", "x.example.org"));
  EXPECT_THAT(csr->uri_sans(), ElementsAre("spiffe://example.org/w"));
}

TEST_F(CliTest, X509MintWritesFilesWithTheirModes) {
  std::string dir = server_.dir();
  Result r = Run({"x509", "mint", "-spiffeID", "spiffe://example.org/w", "-write", dir});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "X509-SVID written to " + dir + "/svid.pem\nPrivate key written to " + dir +
                       "/key.pem\nRoot CAs written to " + dir + "/bundle.pem\n");
  for (auto [name, mode] : {std::pair<const char*, mode_t>{"svid.pem", 0644},
                            {"key.pem", 0600},
                            {"bundle.pem", 0644}}) {
    struct stat st;
    ASSERT_EQ(stat((dir + "/" + name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, mode) << name;
  }
  absl::StatusOr<std::string> key_pem = ReadFile(dir + "/key.pem");
  absl::StatusOr<std::string> svid_pem = ReadFile(dir + "/svid.pem");
  ASSERT_TRUE(key_pem.ok() && svid_pem.ok());
  EXPECT_EQ(crypto::Certificate::ParsePemChain(*svid_pem).value()[0].public_key(),
            crypto::PrivateKey::FromPem(*key_pem).value().public_key());
}

TEST_F(CliTest, X509MintWarnsWhenTheServerCapsTheTtl) {
  server_.svid->set_max_ttl(absl::Hours(1));
  Result r = Run({"x509", "mint", "-spiffeID", "spiffe://example.org/w", "-ttl", "1h30m1ms"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.svid->x509.last().ttl(), 5401);  // rounded up to whole seconds
  EXPECT_EQ(r.err,
            "X509-SVID lifetime was capped shorter than specified ttl; expires "
            "\"2026-01-01T01:00:00Z\"\n");
}

TEST_F(CliTest, X509MintJson) {
  Result r = Run({"x509", "mint", "-spiffeID", "spiffe://example.org/w", "-output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("{\"private_key\":\""));
  EXPECT_THAT(r.out, HasSubstr("\"root_cas\":[\"" + crypto::Base64Encode(server_.ca().der()) + "\"]"));
  EXPECT_THAT(r.out, HasSubstr("\"x509_svid\":[\""));
}

TEST_F(CliTest, X509MintRejectsBadInput) {
  EXPECT_EQ(Run({"x509", "mint"}).err, "Error: spiffeID must be specified\n");
  EXPECT_THAT(Run({"x509", "mint", "-spiffeID", "spiffe://example.org/w", "-ttl", "600"}).err,
              StartsWith("invalid value \"600\" for flag -ttl: missing unit in duration"));
  EXPECT_EQ(Run({"x509", "mint", "-spiffeID", "spiffe://example.org/w", "-ttl", "-1m"}).err,
            "Error: ttl must not be negative\n");
  EXPECT_THAT(server_.svid->x509.requests(), IsEmpty());
  server_.svid->x509.Fail(grpc::StatusCode::PERMISSION_DENIED, "no");
  EXPECT_EQ(Run({"x509", "mint", "-spiffeID", "spiffe://example.org/w"}).err,
            "Error: unable to mint SVID: rpc error: code = PermissionDenied desc = no\n");
}

// A JWT whose payload carries `exp` (the signature is not checked).
std::string FakeJwt(int64_t exp) {
  return crypto::Base64UrlEncode("{\"alg\":\"ES256\",\"kid\":\"k\"}") + "." +
         crypto::Base64UrlEncode(absl::StrCat("{\"sub\":\"spiffe://example.org/w\",\"exp\":", exp,
                                              "}")) +
         ".c2ln";
}

TEST_F(CliTest, JwtMintPrintsTheToken) {
  svidv1::MintJWTSVIDResponse resp;
  resp.mutable_svid()->set_token(FakeJwt(kNow + 300));
  server_.svid->jwt.Respond(resp);
  Result r = Run({"jwt", "mint", "-spiffeID", "spiffe://example.org/w", "-audience", "a1",
                  "-audience", "a2", "-ttl", "5m"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, FakeJwt(kNow + 300) + "\n");
  EXPECT_EQ(r.err, "");
  svidv1::MintJWTSVIDRequest req = server_.svid->jwt.last();
  EXPECT_EQ(apitypes::SpiffeIdString(req.id()), "spiffe://example.org/w");
  EXPECT_THAT(req.audience(), ElementsAre("a1", "a2"));
  EXPECT_EQ(req.ttl(), 300);
}

TEST_F(CliTest, JwtMintWarnsAboutCappedOrUnknownLifetime) {
  svidv1::MintJWTSVIDResponse resp;
  resp.mutable_svid()->set_token(FakeJwt(kNow + 60));
  server_.svid->jwt.Respond(resp);
  Result r = Run({"jwt", "mint", "-spiffeID", "spiffe://example.org/w", "-audience", "a",
                  "-ttl", "1h"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err,
            "JWT-SVID lifetime was capped shorter than specified ttl; expires "
            "\"2026-01-01T00:01:00Z\"\n");
  resp.mutable_svid()->set_token("not-a-jwt");
  server_.svid->jwt.Respond(resp);
  r = Run({"jwt", "mint", "-spiffeID", "spiffe://example.org/w", "-audience", "a"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "Unable to determine JWT-SVID lifetime: token is not a compact JWS\n");
}

TEST_F(CliTest, JwtMintWritesAPrivateFile) {
  svidv1::MintJWTSVIDResponse resp;
  resp.mutable_svid()->set_token(FakeJwt(kNow + 300));
  server_.svid->jwt.Respond(resp);
  std::string path = TempPath("token.jwt");
  Result r = Run({"jwt", "mint", "-spiffeID", "spiffe://example.org/w", "-audience", "a",
                  "-write", path});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "JWT-SVID written to " + path + "\n");
  EXPECT_EQ(ReadFile(path).value(), FakeJwt(kNow + 300));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(CliTest, JwtMintRejectsBadInput) {
  EXPECT_EQ(Run({"jwt", "mint", "-audience", "a"}).err, "Error: spiffeID must be specified\n");
  EXPECT_EQ(Run({"jwt", "mint", "-spiffeID", "spiffe://example.org/w"}).err,
            "Error: at least one audience must be specified\n");
  EXPECT_THAT(server_.svid->jwt.requests(), IsEmpty());
  EXPECT_EQ(Run({"jwt", "mint", "-spiffeID", "spiffe://example.org/w", "-audience", "a"}).err,
            "Error: server response missing token\n");
}

// ---- localauthority ----

lav1::AuthorityState State(const std::string& id, int64_t expires, const std::string& skid = "") {
  lav1::AuthorityState s;
  s.set_authority_id(id);
  s.set_expires_at(expires);
  s.set_upstream_authority_subject_key_id(skid);
  return s;
}

TEST_F(CliTest, LocalAuthorityX509ShowPrintsEveryState) {
  lav1::GetX509AuthorityStateResponse resp;
  *resp.mutable_active() = State("aa11", kNow + 86400, "skid-up");
  *resp.mutable_prepared() = State("bb22", kNow + 172800);
  server_.local_authority.x509_show.Respond(resp);
  Result r = Run({"localauthority", "x509", "show"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Active X.509 authority:\n"
            "  Authority ID: aa11\n"
            "  Expires at: 2026-01-02 00:00:00 +0000 UTC\n"
            "  Upstream authority Subject Key ID: skid-up\n"
            "\n"
            "Prepared X.509 authority:\n"
            "  Authority ID: bb22\n"
            "  Expires at: 2026-01-03 00:00:00 +0000 UTC\n"
            "  Upstream authority ID: No upstream authority\n"
            "\n"
            "Old X.509 authority:\n"
            "  No old X.509 authority found\n");
}

TEST_F(CliTest, LocalAuthorityJwtShowHasNoUpstreamLines) {
  lav1::GetJWTAuthorityStateResponse resp;
  *resp.mutable_old() = State("cc33", kNow);
  server_.local_authority.jwt_show.Respond(resp);
  Result r = Run({"localauthority", "jwt", "show"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Active JWT authority:\n  No active JWT authority found\n\n"
            "Prepared JWT authority:\n  No prepared JWT authority found\n\n"
            "Old JWT authority:\n  Authority ID: cc33\n"
            "  Expires at: 2026-01-01 00:00:00 +0000 UTC\n");
}

TEST_F(CliTest, LocalAuthorityPrepareActivateTaintRevoke) {
  lav1::PrepareX509AuthorityResponse prepared;
  *prepared.mutable_prepared_authority() = State("p1", kNow);
  server_.local_authority.x509_prepare.Respond(prepared);
  Result r = Run({"localauthority", "x509", "prepare"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Prepared X.509 authority:\n  Authority ID: p1\n"
            "  Expires at: 2026-01-01 00:00:00 +0000 UTC\n");

  lav1::ActivateJWTAuthorityResponse activated;
  *activated.mutable_activated_authority() = State("j1", kNow);
  server_.local_authority.jwt_activate.Respond(activated);
  r = Run({"localauthority", "jwt", "activate", "-authorityID", "j1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("Activated JWT authority:\n  Authority ID: j1\n"));
  EXPECT_EQ(server_.local_authority.jwt_activate.last().authority_id(), "j1");

  lav1::TaintX509AuthorityResponse tainted;
  *tainted.mutable_tainted_authority() = State("t1", kNow);
  server_.local_authority.x509_taint.Respond(tainted);
  r = Run({"localauthority", "x509", "taint", "-authorityID", "t1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("Tainted X.509 authority:\n  Authority ID: t1\n"));

  lav1::RevokeJWTAuthorityResponse revoked;
  *revoked.mutable_revoked_authority() = State("r1", kNow);
  server_.local_authority.jwt_revoke.Respond(revoked);
  r = Run({"localauthority", "jwt", "revoke", "-authorityID", "r1", "-output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, ProtoToJson(revoked) + "\n");
  EXPECT_EQ(server_.local_authority.jwt_revoke.last().authority_id(), "r1");
}

TEST_F(CliTest, LocalAuthorityChangesRequireAnAuthorityId) {
  for (const char* kind : {"x509", "jwt"}) {
    for (const char* action : {"activate", "taint", "revoke"}) {
      Result r = Run({"localauthority", kind, action});
      EXPECT_EQ(r.code, 1) << kind << " " << action;
      EXPECT_EQ(r.err, "Error: an authority ID is required\n") << kind << " " << action;
    }
  }
  // prepare and show take no -authorityID at all.
  Result r = Run({"localauthority", "x509", "prepare", "-authorityID", "x"});
  EXPECT_THAT(r.err, StartsWith("flag provided but not defined: -authorityID"));
}

TEST_F(CliTest, LocalAuthorityErrorsSayWhatFailed) {
  server_.local_authority.x509_activate.Fail(grpc::StatusCode::FAILED_PRECONDITION,
                                            "no prepared authority");
  Result r = Run({"localauthority", "x509", "activate", "-authorityID", "a"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error: could not activate X.509 authority: rpc error: code = FailedPrecondition "
            "desc = no prepared authority\n");
  server_.local_authority.jwt_show.Fail(grpc::StatusCode::INTERNAL, "boom");
  r = Run({"localauthority", "jwt", "show"});
  EXPECT_EQ(r.err, "Error: could not get JWT authorities: rpc error: code = Internal desc = boom\n");
  // A response without the authority is a server bug, reported as such.
  r = Run({"localauthority", "x509", "prepare"});
  EXPECT_EQ(r.err,
            "Error: internal error: expected to have prepared X.509 authority information\n");
}

}  // namespace
}  // namespace sigil::server::cli
