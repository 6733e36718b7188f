// Unit tests of the pieces under the commands: JSON of Workload API
// responses, the SPIFFE_ENDPOINT_SOCKET parser, socket resolution, the stop
// token, and the X509SVIDResponse printer.

#include "node-agent/cli/cli_util.h"

#include <unistd.h>

#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "node-agent/cli/command.h"
#include "node-agent/cli/stop.h"
#include "node-agent/cli/test_util.h"
#include "node-agent/cli/x509_response.h"
#include "spiffe/spiffe_test_util.h"
#include "tests/util/files.h"
#include "workload.pb.h"

namespace sigil::agent::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace st = ::sigil::spiffe::testing;

void ExpectInvalid(const absl::Status& s, const std::string& substr) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(substr));
}

// The JSON printer is common/cli_output.h's; these pin what `-output json`
// prints for Workload API responses, as spire-agent does.
TEST(AgentCliJson, SortsKeysAndPrintsUnsetFields) {
  ::JWTSVIDResponse r;
  ::JWTSVID* s = r.add_svids();
  s->set_svid("tok");
  s->set_spiffe_id("spiffe://example.org/a");
  EXPECT_EQ(ProtoToJson(r),
            "{\"svids\":[{\"hint\":\"\",\"spiffe_id\":\"spiffe://example.org/a\",\"svid\":\"tok\"}]}");
}

TEST(AgentCliJson, BytesAreStandardBase64) {
  ::JWTBundlesResponse r;
  (*r.mutable_bundles())["spiffe://b"] = std::string("\xff\xfe", 2);
  (*r.mutable_bundles())["spiffe://a"] = "{}";
  EXPECT_EQ(ProtoToJson(r), "{\"bundles\":{\"spiffe://a\":\"e30=\",\"spiffe://b\":\"//4=\"}}");
}

TEST(ParseEndpointSocket, AcceptsUnixForms) {
  EXPECT_EQ(ParseEndpointSocket("unix:///run/agent.sock").value(), "/run/agent.sock");
  EXPECT_EQ(ParseEndpointSocket("unix:/run/agent.sock").value(), "/run/agent.sock");
  EXPECT_EQ(ParseEndpointSocket("UNIX:///run/agent.sock").value(), "/run/agent.sock");
  EXPECT_EQ(ParseEndpointSocket("unix:///run/my%20agent.sock").value(), "/run/my agent.sock");
}

TEST(ParseEndpointSocket, RefusesWhatGoSpiffeRefuses) {
  ExpectInvalid(ParseEndpointSocket("/run/agent.sock").status(),
                "workload endpoint socket URI must have a tcp:// or unix:// scheme");
  ExpectInvalid(ParseEndpointSocket("http://x/y").status(),
                "must have a tcp:// or unix:// scheme");
  ExpectInvalid(ParseEndpointSocket("unix:agent.sock").status(),
                "workload endpoint unix socket URI must not be opaque");
  ExpectInvalid(ParseEndpointSocket("unix://user@/run/a.sock").status(),
                "workload endpoint unix socket URI must not include user info");
  ExpectInvalid(ParseEndpointSocket("unix:").status(),
                "workload endpoint unix socket URI must include a path");
  ExpectInvalid(ParseEndpointSocket("unix://").status(),
                "workload endpoint unix socket URI must include a path");
  ExpectInvalid(ParseEndpointSocket("unix:///a.sock?x=1").status(),
                "workload endpoint unix socket URI must not include query values");
  ExpectInvalid(ParseEndpointSocket("unix:///a.sock#frag").status(),
                "workload endpoint unix socket URI must not include a fragment");
  ExpectInvalid(ParseEndpointSocket("unix:///a%zz.sock").status(), "invalid URL escape \"%zz\"");
  ExpectInvalid(ParseEndpointSocket("unix:///a%2").status(), "invalid URL escape \"%2\"");
}

TEST(ParseEndpointSocket, RefusesHostsAndTcp) {
  ExpectInvalid(ParseEndpointSocket("unix://host/run/a.sock").status(),
                "must not include a host (\"host\")");
  ExpectInvalid(ParseEndpointSocket("tcp://127.0.0.1:8000").status(),
                "sigil-agent serves the Workload API on a Unix socket only");
}

TEST(ResolveSocketPath, FlagThenVariableThenDefault) {
  EXPECT_EQ(ResolveSocketPath(true, "/flag.sock", std::string("unix:///env.sock")).value(),
            "/flag.sock");
  EXPECT_EQ(ResolveSocketPath(false, kDefaultSocketPath, std::string("unix:///env.sock")).value(),
            "/env.sock");
  EXPECT_EQ(ResolveSocketPath(true, "", std::string("unix:///env.sock")).value(), "/env.sock");
  EXPECT_EQ(ResolveSocketPath(false, kDefaultSocketPath, std::string("")).value(),
            kDefaultSocketPath);
  EXPECT_EQ(ResolveSocketPath(false, kDefaultSocketPath, std::nullopt).value(),
            kDefaultSocketPath);
}

TEST(ResolveSocketPath, MalformedVariableNamesItself) {
  absl::StatusOr<std::string> p = ResolveSocketPath(false, "", std::string("unix:x"));
  ExpectInvalid(p.status(), "invalid SPIFFE_ENDPOINT_SOCKET \"unix:x\": workload endpoint unix "
                            "socket URI must not be opaque");
  // An explicit -socketPath does not even look at it.
  EXPECT_TRUE(ResolveSocketPath(true, "/flag.sock", std::string("unix:x")).ok());
}

TEST(StopToken, StopRunsCallbacksOnce) {
  StopToken token;
  int calls = 0;
  token.AddCallback([&] { ++calls; });
  EXPECT_FALSE(token.stopped());
  token.Stop();
  token.Stop();
  EXPECT_TRUE(token.stopped());
  EXPECT_EQ(calls, 1);
}

TEST(StopToken, CallbackAddedAfterStopRunsAtOnce) {
  StopToken token;
  token.Stop();
  bool ran = false;
  token.AddCallback([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(StopToken, RemovedCallbackNeverRuns) {
  StopToken token;
  bool ran = false;
  int id = token.AddCallback([&] { ran = true; });
  token.RemoveCallback(id);
  token.Stop();
  EXPECT_FALSE(ran);
}

TEST(StopToken, WaitForTimesOutOrWakesOnStop) {
  StopToken token;
  EXPECT_FALSE(token.WaitFor(absl::Milliseconds(10)));
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(20));
    token.Stop();
  });
  absl::Time start = absl::Now();
  EXPECT_TRUE(token.WaitFor(absl::Seconds(30)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  stopper.join();
}

TEST(SignalStopper, RestoresThePreviousHandlers) {
  struct sigaction before;
  ASSERT_EQ(sigaction(SIGTERM, nullptr, &before), 0);
  StopToken token;
  {
    SignalStopper stopper(&token);
    struct sigaction during;
    ASSERT_EQ(sigaction(SIGTERM, nullptr, &during), 0);
    EXPECT_NE(during.sa_handler, before.sa_handler);
    ASSERT_EQ(raise(SIGTERM), 0);
    EXPECT_TRUE(token.WaitFor(absl::Seconds(10)));
  }
  struct sigaction after;
  ASSERT_EQ(sigaction(SIGTERM, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST(SignalStopper, OnlyOneInstallsHandlers) {
  StopToken first_token, second_token;
  SignalStopper first(&first_token);
  {
    SignalStopper second(&second_token);
  }
  // The second one neither took over nor removed the first one's handler.
  ASSERT_EQ(raise(SIGINT), 0);
  EXPECT_TRUE(first_token.WaitFor(absl::Seconds(10)));
  EXPECT_FALSE(second_token.stopped());
}

class X509ResponseTest : public ::testing::Test {
 protected:
  X509ResponseTest()
      : root_(st::MakeRootCa("example.org", st::TestKey(crypto::KeyType::kEcP256, 0))),
        key_(st::TestKey(crypto::KeyType::kEcP256, 1)),
        leaf_(root_.Issue(st::LeafTemplate("spiffe://example.org/w"), key_.public_key())) {}

  ::X509SVIDResponse Response() {
    ::X509SVIDResponse r;
    *r.add_svids() = testing::SvidEntry("spiffe://example.org/w", {leaf_}, key_, {root_.cert});
    return r;
  }

  st::TestCa root_;
  crypto::PrivateKey key_;
  crypto::Certificate leaf_;
};

TEST_F(X509ResponseTest, PrintShowsTheElapsedTimeAsGoDoes) {
  absl::StatusOr<ParsedX509Response> parsed = ParseX509Response(Response(), st::TestNow());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  std::ostringstream out;
  PrintX509Response(*parsed, absl::Microseconds(2104), out);
  EXPECT_THAT(out.str(), StartsWith("Received 1 svid after 2.104ms\n\nSPIFFE ID:\t\t"
                                    "spiffe://example.org/w\n"));
}

TEST_F(X509ResponseTest, SvidNotYetValidFails) {
  absl::StatusOr<ParsedX509Response> parsed =
      ParseX509Response(Response(), st::TestNow() - absl::Hours(2));
  ExpectInvalid(parsed.status(), "\"spiffe://example.org/w\" SVID failed verification");
}

TEST_F(X509ResponseTest, CaInsteadOfLeafFails) {
  ::X509SVIDResponse r;
  *r.add_svids() =
      testing::SvidEntry("spiffe://example.org/w", {root_.cert}, root_.key, {root_.cert});
  ExpectInvalid(ParseX509Response(r, st::TestNow()).status(), "SVID failed verification");
}

TEST_F(X509ResponseTest, WriteCreatesTheDirectory) {
  absl::StatusOr<ParsedX509Response> parsed = ParseX509Response(Response(), st::TestNow());
  ASSERT_TRUE(parsed.ok());
  const ::sigil::testing::TempDir tmp("sigil-write");
  const std::string dir = tmp.File("new/sub");
  std::ostringstream out;
  ASSERT_TRUE(WriteX509Response(*parsed, dir, out).ok());
  EXPECT_EQ(::access((dir + "/svid.0.key").c_str(), R_OK), 0);
}

TEST_F(X509ResponseTest, WriteNamesTheDirectoryThatFailed) {
  absl::StatusOr<ParsedX509Response> parsed = ParseX509Response(Response(), st::TestNow());
  ASSERT_TRUE(parsed.ok());
  std::ostringstream out;
  absl::Status s = WriteX509Response(*parsed, "/dev/null/sub", out);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), StartsWith("cannot create directory /dev/null/sub: "));
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace sigil::agent::cli
