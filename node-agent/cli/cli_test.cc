// End-to-end tests of the agent client commands: real command lines, a real
// gRPC channel over a Unix socket, and the fake Workload API of
// fake_workload_api.h.

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "node-agent/cli/cli.h"
#include "node-agent/cli/command.h"
#include "node-agent/cli/fake_workload_api.h"
#include "node-agent/cli/test_util.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/jwtsvid.h"
#include "spiffe/spiffe_test_util.h"

namespace sigil::agent::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
using testing::CountOf;
using testing::SvidEntry;
using testing::SyncBuf;
using testing::X509StreamScript;

namespace health = ::grpc::health::v1;
namespace st = ::sigil::spiffe::testing;

constexpr char kWorkloadId[] = "spiffe://example.org/workload";
constexpr char kJwtKid[] = "jwt-key-1";

struct Result {
  int code;
  std::string out;
  std::string err;
};

// Runs `fn` on another thread; aborts the test binary if it has not
// finished `timeout` after `stop` was called, rather than hanging.
template <typename Fn>
class Background {
 public:
  explicit Background(Fn fn) : future_(std::async(std::launch::async, std::move(fn))) {}
  int Wait(absl::Duration timeout = absl::Seconds(10)) {
    if (future_.wait_for(absl::ToChronoMilliseconds(timeout)) != std::future_status::ready) {
      ADD_FAILURE() << "command did not stop";
      std::abort();
    }
    return future_.get();
  }

 private:
  std::future<int> future_;
};

class AgentCliTest : public ::testing::Test {
 protected:
  AgentCliTest()
      : clock_(st::TestNow()),
        root_(st::MakeRootCa("example.org", st::TestKey(crypto::KeyType::kEcP256, 0))),
        leaf_key_(st::TestKey(crypto::KeyType::kEcP256, 1)),
        leaf_(root_.Issue(st::LeafTemplate(kWorkloadId), leaf_key_.public_key())),
        agent_(spiffe::TrustDomain::FromString("example.org").value(),
               st::TestKey(crypto::KeyType::kEcP256, 3), kJwtKid, st::TestNow()) {}

  // Runs a command against the fake agent.
  Result Run(std::vector<std::string> args) {
    args.push_back("-socketPath");
    args.push_back(agent_.socket_path());
    return RunRaw(args);
  }

  Result RunRaw(const std::vector<std::string>& args,
                std::optional<std::string> endpoint_socket = std::nullopt) {
    std::ostringstream out, err;
    CommandEnv env = Env(&out, &err);
    env.endpoint_socket = std::move(endpoint_socket);
    int code = RunCommandLine(args, env);
    return {code, out.str(), err.str()};
  }

  CommandEnv Env(std::ostream* out, std::ostream* err, StopToken* stop = nullptr) {
    CommandEnv env;
    env.out = out;
    env.err = err;
    env.clock = &clock_;
    env.stop = stop;
    return env;
  }

  ::X509SVIDResponse OneSvid() {
    ::X509SVIDResponse r;
    *r.add_svids() = SvidEntry(kWorkloadId, {leaf_}, leaf_key_, {root_.cert});
    return r;
  }

  void ServeX509(const ::X509SVIDResponse& r) {
    X509StreamScript s;
    s.responses = {r};
    agent_.workload.ScriptX509({s});
  }

  // Every call the fake saw carried the security header.
  void ExpectHeaderOnEveryCall(size_t expected_calls) {
    std::vector<testing::CallRecord> calls = agent_.workload.calls();
    EXPECT_EQ(calls.size(), expected_calls);
    for (const testing::CallRecord& c : calls) {
      EXPECT_TRUE(c.had_header) << c.method << " was called without the security header";
    }
  }

  std::string Path(const std::string& name) const { return agent_.dir() + "/" + name; }

  FakeClock clock_;
  st::TestCa root_;
  crypto::PrivateKey leaf_key_;
  crypto::Certificate leaf_;
  testing::FakeAgent agent_;
};

// The pretty block SPIRE prints for the one-SVID response (elapsed time is
// zero on the fake clock).
constexpr char kOneSvidPretty[] =
    "Received 1 svid after 0s\n"
    "\n"
    "SPIFFE ID:\t\tspiffe://example.org/workload\n"
    "SVID Valid After:\t2025-12-31 23:00:00 +0000 UTC\n"
    "SVID Valid Until:\t2026-01-01 01:00:00 +0000 UTC\n"
    "CA #1 Valid After:\t2025-12-31 23:00:00 +0000 UTC\n"
    "CA #1 Valid Until:\t2026-01-02 00:00:00 +0000 UTC\n"
    "\n";

// ---- dispatch, flags, refusals ----

TEST_F(AgentCliTest, NoArgumentsPrintsUsageAndFails) {
  Result r = RunRaw({});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("Usage: sigil-agent <command>"));
  EXPECT_THAT(r.err, HasSubstr("api fetch x509"));
  EXPECT_THAT(r.err, HasSubstr("healthcheck"));
}

TEST_F(AgentCliTest, HelpPrintsUsageAndSucceeds) {
  Result r = RunRaw({"-h"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("api validate jwt"));
  EXPECT_EQ(r.out, "");
}

TEST_F(AgentCliTest, UnknownCommandFails) {
  Result r = RunRaw({"frobnicate"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Unknown command: frobnicate\n"));
}

TEST_F(AgentCliTest, GroupAloneListsItsSubcommandsAndFails) {
  Result r = RunRaw({"api"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("Usage: sigil-agent api <subcommand>"));
  EXPECT_THAT(r.err, HasSubstr("api watch"));
  EXPECT_THAT(r.err, HasSubstr("api fetch jwt"));
  r = RunRaw({"api", "validate"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("api validate jwt"));
  EXPECT_THAT(r.err, Not(HasSubstr("api watch")));
}

TEST_F(AgentCliTest, UnknownSubcommandOfGroupFails) {
  Result r = RunRaw({"api", "frobnicate"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Unknown command: api frobnicate\n"));
  r = RunRaw({"api", "validate", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Unknown command: api validate x509\n"));
}

TEST_F(AgentCliTest, GroupHelpSucceeds) {
  Result r = RunRaw({"api", "-h"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("api fetch x509"));
}

TEST_F(AgentCliTest, CommandHelpListsItsFlagsAndSucceeds) {
  Result r = RunRaw({"api", "fetch", "x509", "-h"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("Usage of api fetch x509:"));
  for (const char* flag : {"-output", "-silent", "-socketPath", "-timeout", "-write"}) {
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat("  ", flag))) << flag;
  }
  EXPECT_THAT(r.err, HasSubstr("(default \"/tmp/sigil-agent/public/api.sock\")"));
  EXPECT_THAT(r.err, HasSubstr("Time to wait for a response (default 5s)"));
}

TEST_F(AgentCliTest, FetchJwtHelpShowsDeprecatedFormatFlag) {
  Result r = RunRaw({"api", "fetch", "jwt", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("  -format value\n    \tdeprecated; use -output"));
  EXPECT_THAT(r.err, HasSubstr("  -audience value\n    \tcomma separated list of audience values"));
}

TEST_F(AgentCliTest, UnknownFlagFailsWithUsage) {
  Result r = Run({"api", "fetch", "x509", "-bogus"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("flag provided but not defined: -bogus\nUsage of api fetch x509:"));
  EXPECT_THAT(agent_.workload.calls(), IsEmpty());
}

TEST_F(AgentCliTest, HealthcheckAndWatchTakeNoTimeout) {
  Result r = Run({"healthcheck", "-timeout", "1s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("flag provided but not defined: -timeout\n"));
  r = Run({"api", "watch", "-timeout", "1s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("flag provided but not defined: -timeout\n"));
}

TEST_F(AgentCliTest, BadOutputFormatFails) {
  Result r = Run({"api", "fetch", "x509", "-output", "xml"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("invalid value \"xml\" for flag -output: bad formatter flag: "
                                "unknown format option: \"xml\"\n"));
}

TEST_F(AgentCliTest, TimeoutWithoutUnitFails) {
  Result r = Run({"api", "fetch", "x509", "-timeout", "5"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("invalid value \"5\" for flag -timeout: "));
  EXPECT_THAT(r.err, HasSubstr("missing unit"));
}

TEST_F(AgentCliTest, NegativeTimeoutFails) {
  Result r = Run({"api", "fetch", "jwt", "-audience", "a", "-timeout", "-1s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "-timeout must not be negative (0 means no timeout)\n");
  EXPECT_THAT(agent_.workload.calls(), IsEmpty());
}

TEST_F(AgentCliTest, BooleanFlagRejectsBadValue) {
  Result r = Run({"api", "fetch", "x509", "-silent=maybe"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("invalid boolean value \"maybe\" for -silent: parse error\n"));
}

TEST_F(AgentCliTest, PositionalArgumentFails) {
  Result r = Run({"api", "fetch", "x509", "extra"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "unexpected argument \"extra\" (flags must be given as -name value)\n");
}

TEST_F(AgentCliTest, IsAgentClientCommandKnowsTheFirstWords) {
  EXPECT_TRUE(IsAgentClientCommand("api"));
  EXPECT_TRUE(IsAgentClientCommand("healthcheck"));
  EXPECT_FALSE(IsAgentClientCommand("run"));
  EXPECT_FALSE(IsAgentClientCommand("fetch"));
  EXPECT_FALSE(IsAgentClientCommand(""));
}

// ---- reaching the agent ----

TEST_F(AgentCliTest, MissingSocketSaysTheAgentIsNotRunning) {
  std::string path = Path("none.sock");
  Result r = RunRaw({"api", "fetch", "x509", "-socketPath", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "the agent is not running at " + path + ": the socket does not exist\n");
}

TEST_F(AgentCliTest, PathThatIsNotASocketIsNamed) {
  std::string path = Path("file");
  ASSERT_TRUE(WriteFileAtomic(path, "x", 0644).ok());
  Result r = RunRaw({"api", "fetch", "jwt", "-audience", "a", "-socketPath", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "cannot reach the agent at " + path + ": not a Unix socket\n");
}

TEST_F(AgentCliTest, StaleSocketSaysConnectionRefused) {
  std::string path = Path("stale.sock");
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);  // Bound, never listened: connecting is refused.
  Result r = RunRaw({"api", "validate", "jwt", "-audience", "a", "-svid", "t", "-socketPath", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "unable to validate JWT SVID: the agent is not running at " + path +
                       ": connection refused (stale socket?)\n");
}

TEST_F(AgentCliTest, SocketPathWithUriSpecialCharactersWorks) {
  // gRPC reads its target as a URI: '%', '?', '#' and spaces in the path
  // must reach the socket unchanged.
  std::string odd_dir = Path("we ird%41?#");
  ASSERT_EQ(symlink(agent_.dir().c_str(), odd_dir.c_str()), 0);
  ServeX509(OneSvid());
  Result r = RunRaw({"api", "fetch", "x509", "-socketPath", odd_dir + "/api.sock"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, kOneSvidPretty);
  r = RunRaw({"api", "fetch", "x509"}, "unix://" + Path("we%20ird%2541%3F%23") + "/api.sock");
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(AgentCliTest, EndpointSocketVariableIsUsedWithoutSocketPath) {
  ServeX509(OneSvid());
  Result r = RunRaw({"api", "fetch", "x509"}, "unix://" + agent_.socket_path());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, kOneSvidPretty);
  r = RunRaw({"api", "fetch", "x509"}, "unix:" + agent_.socket_path());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, kOneSvidPretty);
}

TEST_F(AgentCliTest, SocketPathFlagWinsOverEndpointSocketVariable) {
  ServeX509(OneSvid());
  Result r = RunRaw({"api", "fetch", "x509", "-socketPath", agent_.socket_path()},
                    "unix://" + Path("elsewhere.sock"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, kOneSvidPretty);
}

TEST_F(AgentCliTest, EmptySocketPathFallsBackToEndpointSocketVariable) {
  ServeX509(OneSvid());
  Result r = RunRaw({"api", "fetch", "x509", "-socketPath="}, "unix://" + agent_.socket_path());
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(AgentCliTest, MalformedEndpointSocketVariableFails) {
  Result r = RunRaw({"api", "fetch", "x509"}, agent_.socket_path());
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "invalid SPIFFE_ENDPOINT_SOCKET \"" + agent_.socket_path() +
                       "\": workload endpoint socket URI must have a tcp:// or unix:// scheme\n");
  r = RunRaw({"healthcheck"}, "tcp://127.0.0.1:8000");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("Agent is unhealthy: invalid SPIFFE_ENDPOINT_SOCKET "
                                "\"tcp://127.0.0.1:8000\": "));
  EXPECT_THAT(agent_.workload.calls(), IsEmpty());
}

TEST_F(AgentCliTest, DefaultSocketIsUsedWhenNothingIsGiven) {
  Result r = RunRaw({"api", "fetch", "x509", "-timeout", "1s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("/tmp/sigil-agent/public/api.sock"));
}

// ---- healthcheck ----

TEST_F(AgentCliTest, HealthcheckServingIsHealthy) {
  Result r = Run({"healthcheck"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Agent is healthy.\n");
  EXPECT_EQ(r.err, "");
  r = Run({"healthcheck", "-verbose", "-shallow"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "Checking agent health...\nAgent is healthy.\n");
}

TEST_F(AgentCliTest, HealthcheckNotServingIsUnhealthy) {
  agent_.health.SetStatus(health::HealthCheckResponse::NOT_SERVING);
  Result r = Run({"healthcheck"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "Agent is unhealthy: agent returned status \"NOT_SERVING\"\n");
}

TEST_F(AgentCliTest, HealthcheckUnreachableIsUnhealthy) {
  std::string path = Path("none.sock");
  Result r = RunRaw({"healthcheck", "-socketPath", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Agent is unhealthy: unable to determine health\n");
  r = RunRaw({"healthcheck", "-socketPath", path, "-verbose"});
  EXPECT_EQ(r.out, "Checking agent health...\n");
  EXPECT_EQ(r.err, "Failed to check health: the agent is not running at " + path +
                       ": the socket does not exist\nAgent is unhealthy: unable to determine "
                       "health\n");
}

TEST_F(AgentCliTest, HealthcheckJsonPrintsTheResponse) {
  Result r = Run({"healthcheck", "-output", "json"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "{\"status\":\"SERVING\"}\n");
}

// ---- api fetch x509 ----

TEST_F(AgentCliTest, FetchX509PrintsSvidAndBundleValidity) {
  ServeX509(OneSvid());
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, kOneSvidPretty);
  EXPECT_EQ(r.err, "");
  ExpectHeaderOnEveryCall(1);
}

TEST_F(AgentCliTest, ApiFetchIsFetchX509) {
  ServeX509(OneSvid());
  Result r = Run({"api", "fetch"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, kOneSvidPretty);
}

TEST_F(AgentCliTest, FetchX509PrintsIntermediatesHintsAndFederatedBundles) {
  st::TestCa intermediate =
      st::MakeIntermediateCa(root_, "example.org", st::TestKey(crypto::KeyType::kEcP256, 4));
  crypto::CertificateTemplate t = st::LeafTemplate("spiffe://example.org/db");
  t.not_after = st::TestNow() + absl::Minutes(30);
  crypto::Certificate db = intermediate.Issue(t, leaf_key_.public_key());
  st::TestCa fed = st::MakeRootCa("fed.example", st::TestKey(crypto::KeyType::kEcP256, 2));

  ::X509SVIDResponse resp;
  *resp.add_svids() = SvidEntry(kWorkloadId, {leaf_}, leaf_key_, {root_.cert});
  *resp.add_svids() =
      SvidEntry("spiffe://example.org/db", {db, intermediate.cert}, leaf_key_, {root_.cert}, "db");
  (*resp.mutable_federated_bundles())["spiffe://fed.example"] = fed.cert.der();
  ServeX509(resp);

  Result r = Run({"api", "fetch", "x509"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string fed_lines =
      "[spiffe://fed.example] CA #1 Valid After:\t2025-12-31 23:00:00 +0000 UTC\n"
      "[spiffe://fed.example] CA #1 Valid Until:\t2026-01-02 00:00:00 +0000 UTC\n";
  EXPECT_EQ(r.out,
            "Received 2 svids after 0s\n"
            "\n"
            "SPIFFE ID:\t\tspiffe://example.org/workload\n"
            "SVID Valid After:\t2025-12-31 23:00:00 +0000 UTC\n"
            "SVID Valid Until:\t2026-01-01 01:00:00 +0000 UTC\n"
            "CA #1 Valid After:\t2025-12-31 23:00:00 +0000 UTC\n"
            "CA #1 Valid Until:\t2026-01-02 00:00:00 +0000 UTC\n" +
                fed_lines +
                "\n"
                "SPIFFE ID:\t\tspiffe://example.org/db\n"
                "Hint:\t\t\tdb\n"
                "SVID Valid After:\t2025-12-31 23:00:00 +0000 UTC\n"
                "SVID Valid Until:\t2026-01-01 00:30:00 +0000 UTC\n"
                "Intermediate #1 Valid After:\t2025-12-31 23:00:00 +0000 UTC\n"
                "Intermediate #1 Valid Until:\t2026-01-02 00:00:00 +0000 UTC\n"
                "CA #1 Valid After:\t2025-12-31 23:00:00 +0000 UTC\n"
                "CA #1 Valid Until:\t2026-01-02 00:00:00 +0000 UTC\n" +
                fed_lines + "\n");
}

TEST_F(AgentCliTest, FetchX509JsonPrintsTheResponse) {
  ServeX509(OneSvid());
  Result r = Run({"api", "fetch", "x509", "-output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("{\"crl\":[],\"federated_bundles\":{},\"svids\":[{\"bundle\":\"",
                                crypto::Base64Encode(root_.cert.der()), "\",\"hint\":\"\",",
                                "\"spiffe_id\":\"spiffe://example.org/workload\",\"x509_svid\":\"",
                                crypto::Base64Encode(leaf_.der()), "\",\"x509_svid_key\":\"",
                                crypto::Base64Encode(leaf_key_.ToPkcs8Der()), "\"}]}\n"));
}

TEST_F(AgentCliTest, FetchX509JsonDoesNotValidate) {
  // As SPIRE: -output json shows what the agent sent, even an empty answer.
  ServeX509(::X509SVIDResponse());
  Result r = Run({"api", "fetch", "x509", "-output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"crl\":[],\"federated_bundles\":{},\"svids\":[]}\n");
}

TEST_F(AgentCliTest, FetchX509WriteWritesPemFilesWithModes) {
  st::TestCa fed = st::MakeRootCa("fed.example", st::TestKey(crypto::KeyType::kEcP256, 2));
  ::X509SVIDResponse resp = OneSvid();
  (*resp.mutable_federated_bundles())["spiffe://fed.example"] = fed.cert.der();
  ServeX509(resp);
  std::string dir = Path("out");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);

  Result r = Run({"api", "fetch", "x509", "-write", dir + "/"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(
                         "CA #1 Valid Until:\t2026-01-02 00:00:00 +0000 UTC\n\n",
                         "Writing SVID #0 to file ", dir, "/svid.0.pem.\n",
                         "Writing key #0 to file ", dir, "/svid.0.key.\n",
                         "Writing bundle #0 to file ", dir, "/bundle.0.pem.\n",
                         "Writing federated bundle #0 for trust domain spiffe://fed.example to "
                         "file ", dir, "/federated_bundle.0.0.pem.\n")));

  auto expect_file = [&](const std::string& name, const std::string& content, mode_t mode) {
    std::string path = dir + "/" + name;
    absl::StatusOr<std::string> data = ReadFile(path);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ(*data, content) << name;
    struct stat s;
    ASSERT_EQ(stat(path.c_str(), &s), 0);
    EXPECT_EQ(s.st_mode & 0777, mode) << name;
  };
  expect_file("svid.0.pem", crypto::EncodePem("CERTIFICATE", leaf_.der()), 0644);
  expect_file("svid.0.key", crypto::EncodePem("PRIVATE KEY", leaf_key_.ToPkcs8Der()), 0600);
  expect_file("bundle.0.pem", crypto::EncodePem("CERTIFICATE", root_.cert.der()), 0644);
  expect_file("federated_bundle.0.0.pem", crypto::EncodePem("CERTIFICATE", fed.cert.der()), 0644);
}

TEST_F(AgentCliTest, FetchX509WriteReplacesAnExistingKeyWithAPrivateOne) {
  ServeX509(OneSvid());
  std::string key = Path("svid.0.key");
  ASSERT_TRUE(WriteFileAtomic(key, "old", 0666).ok());
  Result r = Run({"api", "fetch", "x509", "-write", agent_.dir(), "-silent"});
  ASSERT_EQ(r.code, 0) << r.err;
  struct stat s;
  ASSERT_EQ(stat(key.c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(key).value(), crypto::EncodePem("PRIVATE KEY", leaf_key_.ToPkcs8Der()));
}

TEST_F(AgentCliTest, FetchX509SilentPrintsOnlyTheFilesWritten) {
  ServeX509(OneSvid());
  Result r = Run({"api", "fetch", "x509", "-silent", "-write", agent_.dir()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("Writing SVID #0 to file " + agent_.dir() + "/svid.0.pem.\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("SPIFFE ID")));
  r = Run({"api", "fetch", "x509", "-silent"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "");
}

TEST_F(AgentCliTest, FetchX509WriteWithJsonIsRefused) {
  Result r = Run({"api", "fetch", "x509", "-output", "json", "-write", agent_.dir()});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "-write is only available for pretty output format\n");
  EXPECT_THAT(agent_.workload.calls(), IsEmpty());
}

TEST_F(AgentCliTest, FetchX509WriteCreatesAMissingDirectory) {
  ServeX509(OneSvid());
  std::string dir = Path("missing/sub");
  Result r = Run({"api", "fetch", "x509", "-write", dir});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(::access((dir + "/svid.0.pem").c_str(), R_OK), 0);
}

TEST_F(AgentCliTest, FetchX509WriteUnderAFileFails) {
  ServeX509(OneSvid());
  Result r = Run({"api", "fetch", "x509", "-write", "/dev/null/sub"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("cannot create directory /dev/null/sub: "));
}

TEST_F(AgentCliTest, FetchX509RpcErrorIsShownAsSpireDoes) {
  X509StreamScript s;
  s.hold_open = false;
  s.final_status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued");
  agent_.workload.ScriptX509({s});
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "rpc error: code = PermissionDenied desc = no identity issued\n");
  ExpectHeaderOnEveryCall(1);
}

TEST_F(AgentCliTest, FetchX509StreamEndingWithoutAnswerFails) {
  X509StreamScript s;
  s.hold_open = false;
  agent_.workload.ScriptX509({s});
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "the agent closed the stream without sending a response\n");
}

TEST_F(AgentCliTest, FetchX509TimesOut) {
  X509StreamScript s;
  s.responses = {OneSvid()};
  s.delay = absl::Seconds(5);
  agent_.workload.ScriptX509({s});
  absl::Time start = absl::Now();
  Result r = Run({"api", "fetch", "x509", "-timeout", "200ms"});
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "rpc error: code = DeadlineExceeded desc = Deadline Exceeded\n");
}

TEST_F(AgentCliTest, FetchX509EmptyResponseFails) {
  ServeX509(::X509SVIDResponse());
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "workload response contains no svids\n");
}

TEST_F(AgentCliTest, FetchX509SvidFromAnotherCaFailsVerification) {
  st::TestCa other = st::MakeRootCa("example.org", st::TestKey(crypto::KeyType::kEcP256, 5));
  ::X509SVIDResponse resp;
  *resp.add_svids() = SvidEntry(kWorkloadId, {leaf_}, leaf_key_, {other.cert});
  ServeX509(resp);
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("\"spiffe://example.org/workload\" SVID failed verification "
                                "against bundle: "));
  EXPECT_EQ(r.out, "");
}

TEST_F(AgentCliTest, FetchX509ExpiredSvidFailsVerification) {
  ServeX509(OneSvid());
  clock_.Advance(absl::Hours(2));
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("\"spiffe://example.org/workload\" SVID failed verification "
                                "against bundle: "));
  EXPECT_THAT(r.err, HasSubstr("expired"));
}

TEST_F(AgentCliTest, FetchX509SvidWhoseCertificateNamesAnotherIdFails) {
  ::X509SVIDResponse resp;
  *resp.add_svids() = SvidEntry("spiffe://example.org/other", {leaf_}, leaf_key_, {root_.cert});
  ServeX509(resp);
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "\"spiffe://example.org/other\" SVID failed verification against bundle: "
                   "the certificate's SPIFFE ID is \"spiffe://example.org/workload\"\n");
}

TEST_F(AgentCliTest, FetchX509InvalidSpiffeIdFails) {
  ::X509SVIDResponse resp;
  *resp.add_svids() = SvidEntry("http://example.org/workload", {leaf_}, leaf_key_, {root_.cert});
  ServeX509(resp);
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("\"http://example.org/workload\" is not a valid SPIFFE ID: "));
}

TEST_F(AgentCliTest, FetchX509KeyNotMatchingTheLeafFails) {
  ::X509SVIDResponse resp;
  *resp.add_svids() = SvidEntry(kWorkloadId, {leaf_}, st::TestKey(crypto::KeyType::kEcP256, 6),
                                {root_.cert});
  ServeX509(resp);
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "failed to parse svid entry 0 for spiffe id \"spiffe://example.org/workload\": "
                   "private key does not match the leaf certificate\n");
}

TEST_F(AgentCliTest, FetchX509MalformedPartsAreNamed) {
  struct Case {
    std::string what;
    std::function<void(::X509SVID*)> mutate;
    std::string message;
  };
  std::vector<Case> cases = {
      {"no certificates", [](::X509SVID* s) { s->clear_x509_svid(); }, "no certificates found"},
      {"garbage certificates", [](::X509SVID* s) { s->set_x509_svid("junk"); }, ""},
      {"garbage key", [](::X509SVID* s) { s->set_x509_svid_key("junk"); },
       "failed to parse private key: "},
      {"no bundle", [](::X509SVID* s) { s->clear_bundle(); }, "no certificates in trust bundle"},
      {"garbage bundle", [](::X509SVID* s) { s->set_bundle("junk"); },
       "failed to parse trust bundle: "},
  };
  for (const Case& c : cases) {
    ::X509SVIDResponse resp = OneSvid();
    c.mutate(resp.mutable_svids(0));
    ServeX509(resp);
    Result r = Run({"api", "fetch", "x509"});
    EXPECT_EQ(r.code, 1) << c.what;
    EXPECT_THAT(r.err, StartsWith("failed to parse svid entry 0 for spiffe id "
                                  "\"spiffe://example.org/workload\": " +
                                  c.message))
        << c.what;
  }
}

TEST_F(AgentCliTest, FetchX509MalformedFederatedBundleFails) {
  ::X509SVIDResponse resp = OneSvid();
  (*resp.mutable_federated_bundles())["spiffe://fed.example"] = "junk";
  ServeX509(resp);
  Result r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err,
              StartsWith("failed to parse bundle for federated domain \"spiffe://fed.example\": "));
  (*resp.mutable_federated_bundles())["spiffe://fed.example"] = "";
  ServeX509(resp);
  r = Run({"api", "fetch", "x509"});
  EXPECT_EQ(r.err, "no certificates in bundle for federated domain \"spiffe://fed.example\"\n");
}

// ---- api fetch jwt ----

TEST_F(AgentCliTest, FetchJwtRequiresAudience) {
  Result r = Run({"api", "fetch", "jwt"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "audience must be specified\n");
  EXPECT_THAT(agent_.workload.calls(), IsEmpty());
}

TEST_F(AgentCliTest, FetchJwtRefusesEmptyAudienceValues) {
  for (const char* value : {"", "a,", ",a", "a,,b"}) {
    Result r = Run({"api", "fetch", "jwt", "-audience", value});
    EXPECT_EQ(r.code, 1) << value;
    EXPECT_EQ(r.err, "audience must not contain empty values (check for stray commas)\n") << value;
  }
  EXPECT_THAT(agent_.workload.calls(), IsEmpty());
}

TEST_F(AgentCliTest, FetchJwtRefusesInvalidSpiffeId) {
  Result r = Run({"api", "fetch", "jwt", "-audience", "a", "-spiffeID", "example.org/x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("-spiffeID \"example.org/x\" is not a valid SPIFFE ID: "));
  EXPECT_THAT(agent_.workload.calls(), IsEmpty());
}

TEST_F(AgentCliTest, FetchJwtPrintsTokensThenBundles) {
  Result r = Run({"api", "fetch", "jwt", "-audience", "a,b", "-audience", "c", "-spiffeID",
                  "spiffe://example.org/web"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<::JWTSVIDRequest> reqs = agent_.workload.jwt_requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_THAT(reqs[0].audience(), ::testing::ElementsAre("a", "b", "c"));
  EXPECT_EQ(reqs[0].spiffe_id(), "spiffe://example.org/web");

  // The token printed is the one the agent signed: it validates against the
  // bundle printed after it.
  const std::string prefix = "token(spiffe://example.org/web):\n\t";
  ASSERT_THAT(r.out, StartsWith(prefix));
  std::string token = r.out.substr(prefix.size(), r.out.find('\n', prefix.size()) - prefix.size());
  EXPECT_EQ(r.out, prefix + token + "\nbundle(spiffe://example.org):\n\t" +
                       agent_.workload.jwks() + "\n");
  spiffe::BundleSet bundles;
  bundles.Add(agent_.workload.jwt_bundle());
  absl::StatusOr<spiffe::JwtSvid> svid = spiffe::ParseAndValidate(token, bundles, "c", st::TestNow());
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->id.ToString(), "spiffe://example.org/web");
  EXPECT_EQ(svid->audience, (std::vector<std::string>{"a", "b", "c"}));
  // SPIRE asks for the bundles first; both calls carry the header.
  std::vector<testing::CallRecord> calls = agent_.workload.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].method, "FetchJWTBundles");
  EXPECT_EQ(calls[1].method, "FetchJWTSVID");
  ExpectHeaderOnEveryCall(2);
}

TEST_F(AgentCliTest, FetchJwtJsonPrintsBothResponsesAsAnArray) {
  for (const char* flag : {"-output", "-format"}) {
    Result r = Run({"api", "fetch", "jwt", "-audience", "db", flag, "json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const std::string prefix = "[{\"svids\":[{\"hint\":\"\",\"spiffe_id\":\"" +
                               std::string(kWorkloadId) + "\",\"svid\":\"";
    ASSERT_THAT(r.out, StartsWith(prefix)) << flag;
    size_t end = r.out.find('"', prefix.size());
    std::string token = r.out.substr(prefix.size(), end - prefix.size());
    EXPECT_EQ(r.out, prefix + token + "\"}]},{\"bundles\":{\"spiffe://example.org\":\"" +
                         crypto::Base64Encode(agent_.workload.jwks()) + "\"}}]\n")
        << flag;
  }
}

TEST_F(AgentCliTest, FetchJwtSvidErrorIsShown) {
  agent_.workload.FailJwtSvid(
      grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued"));
  Result r = Run({"api", "fetch", "jwt", "-audience", "a"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "rpc error: code = PermissionDenied desc = no identity issued\n");
}

TEST_F(AgentCliTest, FetchJwtBundlesErrorIsShownAndNoSvidIsRequested) {
  agent_.workload.FailJwtBundles(grpc::Status(grpc::StatusCode::UNKNOWN, "error fetching bundles"));
  Result r = Run({"api", "fetch", "jwt", "-audience", "a"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "rpc error: code = Unknown desc = error fetching bundles\n");
  EXPECT_THAT(agent_.workload.jwt_requests(), IsEmpty());
}

// ---- api validate jwt ----

std::string MintToken(const crypto::PrivateKey& key, const std::string& aud) {
  spiffe::JwtSvidClaims claims{spiffe::SpiffeId::FromString(kWorkloadId).value(),
                               {aud},
                               st::TestNow() + absl::Hours(1),
                               st::TestNow(),
                               ""};
  return spiffe::SignJwtSvid(claims, key, kJwtKid).value();
}

TEST_F(AgentCliTest, ValidateJwtRequiresAudienceAndSvid) {
  Result r = Run({"api", "validate", "jwt", "-svid", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "audience must be specified\n");
  r = Run({"api", "validate", "jwt", "-audience", "a"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "svid must be specified\n");
  EXPECT_THAT(agent_.workload.calls(), IsEmpty());
}

TEST_F(AgentCliTest, ValidateJwtValidTokenPrintsIdAndClaims) {
  std::string token = MintToken(st::TestKey(crypto::KeyType::kEcP256, 3), "db");
  Result r = Run({"api", "validate", "jwt", "-audience", "db", "-svid", token});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "SVID is valid.\n"
            "SPIFFE ID : spiffe://example.org/workload\n"
            "Claims    : {\"aud\":\"db\",\"exp\":1767229200,\"iat\":1767225600,"
            "\"sub\":\"spiffe://example.org/workload\"}\n");
  std::vector<::ValidateJWTSVIDRequest> reqs = agent_.workload.validate_requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].audience(), "db");
  EXPECT_EQ(reqs[0].svid(), token);
  ExpectHeaderOnEveryCall(1);
}

TEST_F(AgentCliTest, ValidateJwtJsonPrintsTheResponse) {
  std::string token = MintToken(st::TestKey(crypto::KeyType::kEcP256, 3), "db");
  Result r = Run({"api", "validate", "jwt", "-audience", "db", "-svid", token, "-output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"claims\":{\"aud\":\"db\",\"exp\":1767229200,\"iat\":1767225600,"
            "\"sub\":\"spiffe://example.org/workload\"},"
            "\"spiffe_id\":\"spiffe://example.org/workload\"}\n");
}

TEST_F(AgentCliTest, ValidateJwtWrongAudienceIsNotValid) {
  std::string token = MintToken(st::TestKey(crypto::KeyType::kEcP256, 3), "db");
  Result r = Run({"api", "validate", "jwt", "-audience", "web", "-svid", token});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("SVID is not valid: jwtsvid: "));
  EXPECT_THAT(r.err, HasSubstr("audience"));
}

TEST_F(AgentCliTest, ValidateJwtForgedTokenIsNotValid) {
  std::string forged = MintToken(st::TestKey(crypto::KeyType::kEcP256, 7), "db");
  Result r = Run({"api", "validate", "jwt", "-audience", "db", "-svid", forged});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, StartsWith("SVID is not valid: jwtsvid: "));
}

TEST_F(AgentCliTest, ValidateJwtOtherFailuresAreUnableToValidate) {
  agent_.workload.FailValidate(grpc::Status(grpc::StatusCode::INTERNAL, "boom"));
  Result r = Run({"api", "validate", "jwt", "-audience", "db", "-svid", "t"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "unable to validate JWT SVID: rpc error: code = Internal desc = boom\n");
}

// ---- api watch ----

TEST_F(AgentCliTest, WatchPrintsEveryUpdateUntilStopped) {
  X509StreamScript s;
  s.responses = {OneSvid(), OneSvid()};
  agent_.workload.ScriptX509({s});
  SyncBuf out_buf, err_buf;
  std::ostream out(&out_buf), err(&err_buf);
  StopToken stop;
  CommandEnv env = Env(&out, &err, &stop);
  Background watch([&] {
    return RunCommandLine({"api", "watch", "-socketPath", agent_.socket_path()}, env);
  });
  EXPECT_TRUE(out_buf.WaitFor(
      [](const std::string& s) { return CountOf(s, "Received 1 svid") == 2; }, absl::Seconds(10)));
  stop.Stop();
  EXPECT_EQ(watch.Wait(), 0);
  EXPECT_EQ(out_buf.str(), absl::StrCat(kOneSvidPretty, kOneSvidPretty));
  EXPECT_EQ(err_buf.str(), "");
  ExpectHeaderOnEveryCall(1);
}

TEST_F(AgentCliTest, WatchJsonPrintsOneLinePerUpdate) {
  X509StreamScript s;
  s.responses = {OneSvid(), OneSvid()};
  agent_.workload.ScriptX509({s});
  SyncBuf out_buf;
  std::ostringstream err;
  std::ostream out(&out_buf);
  StopToken stop;
  CommandEnv env = Env(&out, &err, &stop);
  Background watch([&] {
    return RunCommandLine(
        {"api", "watch", "-output", "json", "-socketPath", agent_.socket_path()}, env);
  });
  EXPECT_TRUE(out_buf.WaitFor([](const std::string& s) { return CountOf(s, "\n") == 2; },
                              absl::Seconds(10)));
  stop.Stop();
  EXPECT_EQ(watch.Wait(), 0);
  std::string line = ProtoToJson(OneSvid()) + "\n";
  EXPECT_EQ(out_buf.str(), line + line);
}

TEST_F(AgentCliTest, WatchReconnectsAfterTheStreamFails) {
  X509StreamScript first;
  first.responses = {OneSvid()};
  first.hold_open = false;
  first.final_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "agent restarting");
  X509StreamScript second;
  second.responses = {OneSvid()};
  agent_.workload.ScriptX509({first, second});
  SyncBuf out_buf, err_buf;
  std::ostream out(&out_buf), err(&err_buf);
  StopToken stop;
  CommandEnv env = Env(&out, &err, &stop);
  Background watch([&] {
    return RunCommandLine({"api", "watch", "-socketPath", agent_.socket_path()}, env);
  });
  EXPECT_TRUE(out_buf.WaitFor(
      [](const std::string& s) { return CountOf(s, "Received 1 svid") == 2; }, absl::Seconds(10)));
  stop.Stop();
  EXPECT_EQ(watch.Wait(), 0);
  EXPECT_EQ(err_buf.str(),
            "rpc error: code = Unavailable desc = agent restarting; retrying in 1s\n");
  ExpectHeaderOnEveryCall(2);
}

TEST_F(AgentCliTest, WatchGivesUpOnInvalidArgument) {
  X509StreamScript s;
  s.hold_open = false;
  s.final_status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad request");
  agent_.workload.ScriptX509({s});
  std::ostringstream out, err;
  StopToken stop;
  int code = RunCommandLine({"api", "watch", "-socketPath", agent_.socket_path()},
                            Env(&out, &err, &stop));
  EXPECT_EQ(code, 1);
  EXPECT_EQ(err.str(), "rpc error: code = InvalidArgument desc = bad request\n");
}

TEST_F(AgentCliTest, WatchReportsAnInvalidUpdateAndKeepsWatching) {
  X509StreamScript s;
  s.responses = {::X509SVIDResponse(), OneSvid()};
  agent_.workload.ScriptX509({s});
  SyncBuf out_buf, err_buf;
  std::ostream out(&out_buf), err(&err_buf);
  StopToken stop;
  CommandEnv env = Env(&out, &err, &stop);
  Background watch([&] {
    return RunCommandLine({"api", "watch", "-socketPath", agent_.socket_path()}, env);
  });
  EXPECT_TRUE(out_buf.WaitFor(
      [](const std::string& s) { return CountOf(s, "Received 1 svid") == 1; }, absl::Seconds(10)));
  stop.Stop();
  EXPECT_EQ(watch.Wait(), 0);
  EXPECT_EQ(err_buf.str(), "workload response contains no svids\n");
  EXPECT_EQ(out_buf.str(), kOneSvidPretty);
}

TEST_F(AgentCliTest, WatchStopsWhileWaitingToReconnect) {
  std::string path = Path("none.sock");
  SyncBuf err_buf;
  std::ostringstream out;
  std::ostream err(&err_buf);
  StopToken stop;
  CommandEnv env = Env(&out, &err, &stop);
  Background watch([&] { return RunCommandLine({"api", "watch", "-socketPath", path}, env); });
  EXPECT_TRUE(err_buf.WaitFor([](const std::string& s) { return !s.empty(); }, absl::Seconds(10)));
  stop.Stop();
  EXPECT_EQ(watch.Wait(absl::Seconds(2)), 0);
  EXPECT_EQ(err_buf.str(), "the agent is not running at " + path +
                               ": the socket does not exist; retrying in 1s\n");
}

TEST_F(AgentCliTest, WatchStopsOnSigint) {
  X509StreamScript s;
  s.responses = {OneSvid(), OneSvid()};
  agent_.workload.ScriptX509({s});
  SyncBuf out_buf;
  std::ostream out(&out_buf);
  std::ostringstream err;
  // The process entry point runs on the real clock, at which the test SVIDs
  // may not be valid: JSON output shows the updates without verifying them.
  Background watch([&] {
    return RunAgentClientCommand(
        {"api", "watch", "-output", "json", "-socketPath", agent_.socket_path()}, out, err);
  });
  // The handler is installed before the command connects, so once updates
  // arrive SIGINT reaches it instead of ending the test binary.
  ASSERT_TRUE(out_buf.WaitFor([](const std::string& s) { return CountOf(s, "\n") == 2; },
                              absl::Seconds(10)));
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  EXPECT_EQ(watch.Wait(), 0);
  std::string line = ProtoToJson(OneSvid()) + "\n";
  EXPECT_EQ(out_buf.str(), line + line);
  EXPECT_EQ(err.str(), "");
  // The previous disposition is back.
  struct sigaction now;
  ASSERT_EQ(sigaction(SIGINT, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

}  // namespace
}  // namespace sigil::agent::cli
