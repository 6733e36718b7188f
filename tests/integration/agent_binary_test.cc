// End-to-end tests of sigil-agent and sigil-server, both the real binaries,
// with an independent Workload API client (workload_client.py: Python's gRPC
// runtime and protoc-generated messages; no Sigil code) standing in for a
// workload, and openssl checking what it receives.

#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/x509_builder.h"
#include "spiffe/jwtsvid.h"
#include "tests/util/process.h"

namespace sigil::testing {
namespace {

using ::testing::HasSubstr;

class AgentBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sigil-it-agent");
    server_sock_ = dir_ + "/server/api.sock";
    agent_sock_ = dir_ + "/agent/public/api.sock";
    port_ = FreePort();
    uid_ = std::to_string(::getuid());
    // Python message classes for the standard workload.proto.
    RunResult gen = RunCommand({"/usr/bin/protoc", "--proto_path=" + SourceDir() + "/proto",
                                "--python_out=" + dir_, SourceDir() + "/proto/workload.proto"});
    ASSERT_EQ(gen.exit_code, 0) << gen.err;
    StartServer();
  }

  void TearDown() override {
    if (agent_) agent_->Stop(SIGTERM);
    if (server_) server_->Stop(SIGTERM);
  }

  void StartServer(const std::string& config = "") {
    std::vector<std::string> argv = {BinDir() + "/sigil-server", "run", "-trustDomain", "example.org", "-dataDir",
                                     dir_ + "/server/data", "-socketPath", server_sock_, "-bindAddress", "127.0.0.1",
                                     "-serverPort", std::to_string(port_)};
    if (!config.empty()) argv.insert(argv.end(), {"-config", config});
    server_ = std::make_unique<Process>(argv, dir_ + "/server.log");
    ASSERT_TRUE(
        WaitFor([&] { return Server({"healthcheck"}).exit_code == 0; }, absl::Seconds(30), kCommandPollInterval))
        << server_->Log();
  }

  // Starts the agent; with a token it attests, without one it must resume
  // (or attest as its config file says).
  void StartAgent(const std::string& token, const std::string& config = "") {
    std::vector<std::string> argv = {BinDir() + "/sigil-agent", "run", "-trustDomain", "example.org",
                                     "-serverAddress", "127.0.0.1", "-serverPort", std::to_string(port_),
                                     "-dataDir", dir_ + "/agent/data", "-socketPath", agent_sock_};
    if (!config.empty()) {
      WriteTestFile(dir_ + "/bootstrap.pem", Server({"bundle", "show"}).out);
      argv.insert(argv.end(), {"-config", config, "-trustBundle", dir_ + "/bootstrap.pem"});
    }
    if (!token.empty()) {
      WriteTestFile(dir_ + "/bootstrap.pem", Server({"bundle", "show"}).out);
      argv.insert(argv.end(), {"-joinToken", token, "-trustBundle", dir_ + "/bootstrap.pem"});
    }
    agent_ = std::make_unique<Process>(argv, dir_ + "/agent.log");
    ASSERT_TRUE(WaitFor(
        [&] {
          return RunCommand({BinDir() + "/sigil-agent", "healthcheck", "-socketPath", agent_sock_}).exit_code == 0;
        },
        absl::Seconds(30), kCommandPollInterval))
        << agent_->Log();
  }

  RunResult Server(std::vector<std::string> args) {
    args.insert(args.begin(), BinDir() + "/sigil-server");
    args.push_back("-socketPath");
    args.push_back(server_sock_);
    return RunCommand(args);
  }

  RunResult Client(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/python3", SourceDir() + "/tests/integration/workload_client.py",
                               agent_sock_, dir_});
    return RunCommand(args);
  }

  std::string Token() {
    RunResult r = Server({"token", "generate", "-spiffeID", "spiffe://example.org/node", "-ttl", "600"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::smatch m;
    std::regex re("Token: (\\S+)");
    return std::regex_search(r.out, m, re) ? m[1].str() : "";
  }

  std::string CreateEntry(const std::string& path, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"entry", "create", "-parentID", "spiffe://example.org/node", "-spiffeID",
                                     "spiffe://example.org" + path, "-selector", "unix:uid:" + uid_};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = Server(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::smatch m;
    std::regex re("Entry ID\\s+: (\\S+)");
    return std::regex_search(r.out, m, re) ? m[1].str() : "";
  }

  // Waits until the workload gets an SVID for `id` (entries reach the agent
  // by push; minting takes a round trip).
  bool WaitForSvid(const std::string& id) {
    return WaitFor(
        [&] {
          return Client({"x509", dir_ + "/probe"}).out.find("id " + id) != std::string::npos;
        },
        absl::Seconds(30), kCommandPollInterval);
  }

  std::string dir_, server_sock_, agent_sock_, uid_;
  int port_ = 0;
  std::unique_ptr<Process> server_, agent_;
};

TEST_F(AgentBinaryTest, WorkloadGetsX509SvidThatOpensslAccepts) {
  CreateEntry("/web", {"-dns", "web.example.org"});
  StartAgent(Token());
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/web")) << agent_->Log();

  RunResult fetch = Client({"x509", dir_ + "/out"});
  ASSERT_EQ(fetch.exit_code, 0) << fetch.out << fetch.err;
  RunResult verify = RunCommand({"/usr/bin/openssl", "verify", "-x509_strict", "-CAfile", dir_ + "/out/bundle.pem",
                                 dir_ + "/out/svid.pem"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  RunResult text = RunCommand({"/usr/bin/openssl", "x509", "-in", dir_ + "/out/svid.pem", "-noout", "-text"});
  EXPECT_THAT(text.out, HasSubstr("URI:spiffe://example.org/web"));
  EXPECT_THAT(text.out, HasSubstr("DNS:web.example.org"));
  RunResult pub_cert = RunCommand({"/usr/bin/openssl", "x509", "-in", dir_ + "/out/svid.pem", "-noout", "-pubkey"});
  RunResult pub_key = RunCommand({"/usr/bin/openssl", "pkey", "-in", dir_ + "/out/key.pem", "-pubout"});
  EXPECT_EQ(pub_cert.out, pub_key.out);

  RunResult bundles = Client({"bundles"});
  EXPECT_THAT(bundles.out, HasSubstr("bundle spiffe://example.org 1 certs"));
  // The same roots as the server's bundle.
  EXPECT_EQ(ReadFileOrEmpty(dir_ + "/out/bundle.pem"), Server({"bundle", "show"}).out);
}

TEST_F(AgentBinaryTest, WorkloadGetsJwtSvidThatValidates) {
  CreateEntry("/api");
  StartAgent(Token());
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/api")) << agent_->Log();

  RunResult jwt = Client({"jwt", "payments", dir_ + "/token"});
  ASSERT_EQ(jwt.exit_code, 0) << jwt.out << jwt.err;
  std::string token = ReadFileOrEmpty(dir_ + "/token");
  RunResult jwks = Client({"jwtbundles", dir_ + "/jwks.json"});
  ASSERT_EQ(jwks.exit_code, 0) << jwks.out;

  // Checked independently of the agent, against the JWKS it served...
  auto td = spiffe::TrustDomain::FromString("example.org").value();
  auto bundle = spiffe::Bundle::ParseSpiffeJson(td, ReadFileOrEmpty(dir_ + "/jwks.json"));
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  spiffe::BundleSet set;
  set.Add(*bundle);
  auto svid = spiffe::ParseAndValidate(token, set, "payments", absl::Now());
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->id.ToString(), "spiffe://example.org/api");

  // ...and by the agent's ValidateJWTSVID.
  EXPECT_THAT(Client({"validate", "payments", token}).out, HasSubstr("valid spiffe://example.org/api"));
  RunResult wrong = Client({"validate", "other", token});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_THAT(wrong.out, HasSubstr("INVALID_ARGUMENT"));
}

TEST_F(AgentBinaryTest, MissingSecurityHeaderIsRefused) {
  CreateEntry("/web");
  StartAgent(Token());
  RunResult r = Client({"noheader"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("INVALID_ARGUMENT: security header missing from request"));
}

TEST_F(AgentBinaryTest, CallerWithoutMatchingEntryIsRefused) {
  // An entry for another uid only.
  Server({"entry", "create", "-parentID", "spiffe://example.org/node", "-spiffeID", "spiffe://example.org/other",
          "-selector", "unix:uid:" + std::to_string(::getuid() + 4242)});
  StartAgent(Token());
  RunResult r;
  ASSERT_TRUE(WaitFor(
      [&] {
        r = Client({"x509", dir_ + "/out"});
        return r.out.find("PERMISSION_DENIED") != std::string::npos;
      },
      absl::Seconds(30), kCommandPollInterval))
      << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("no identity issued"));
}

TEST_F(AgentBinaryTest, ShortLivedSvidsRotateOnTheStream) {
  CreateEntry("/rotating", {"-x509SVIDTTL", "8"});
  StartAgent(Token());
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/rotating")) << agent_->Log();
  // Three updates with three different certificates, each renewed at about
  // half of its 8 s lifetime.
  RunResult watch = Client({"watch", "3", "40"});
  ASSERT_EQ(watch.exit_code, 0) << watch.out << watch.err;
  std::vector<std::string> lines = absl::StrSplit(absl::StripAsciiWhitespace(watch.out), '\n');
  ASSERT_EQ(lines.size(), 3u) << watch.out;
  std::set<std::string> certs;
  std::vector<double> times;
  for (const auto& l : lines) {
    std::vector<std::string> f = absl::StrSplit(l, ' ');
    ASSERT_GE(f.size(), 4u) << l;
    times.push_back(std::stod(f[2]));
    certs.insert(f[3]);
  }
  EXPECT_EQ(certs.size(), 3u) << watch.out;
  // Renewed at about half of the 8 s lifetime, not in a tight loop.
  EXPECT_GT(times[2] - times[1], 2.0) << watch.out;
  EXPECT_LT(times[2] - times[1], 7.0) << watch.out;
}

TEST_F(AgentBinaryTest, EntryChangesReachTheWorkloadStream) {
  std::string keep = CreateEntry("/keep");
  std::string gone = CreateEntry("/gone");
  StartAgent(Token());
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/gone")) << agent_->Log();
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/keep"));

  Process watch({"/usr/bin/python3", SourceDir() + "/tests/integration/workload_client.py", agent_sock_, dir_,
                 "watch", "100", "60"},
                dir_ + "/watch.log");
  ASSERT_TRUE(WaitFor([&] { return watch.Log().find("update 1 ") != std::string::npos; }, absl::Seconds(20)));
  ASSERT_THAT(watch.Log(), HasSubstr("spiffe://example.org/gone="));

  ASSERT_EQ(Server({"entry", "delete", "-entryID", gone}).exit_code, 0);
  // The next update no longer carries the deleted entry.
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string log = watch.Log();
        std::string last = log.substr(log.rfind("update "));
        return last.find("/keep=") != std::string::npos && last.find("/gone=") == std::string::npos;
      },
      absl::Seconds(10)))
      << watch.Log();

  // A new entry shows up on the same stream.
  absl::Time created = absl::Now();
  CreateEntry("/fresh");
  ASSERT_TRUE(WaitFor([&] { return watch.Log().find("/fresh=") != std::string::npos; }, absl::Seconds(10)))
      << watch.Log();
  EXPECT_LT(absl::Now() - created, absl::Seconds(5));
  watch.Stop(SIGTERM);
}

// Forced rotation from the CLI: the workload keeps a valid SVID throughout
// and, once the old CA is tainted, is moved to the new one at once.
TEST_F(AgentBinaryTest, CaRotationAndTaintReachTheWorkload) {
  CreateEntry("/web");
  StartAgent(Token());
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/web")) << agent_->Log();
  auto authority = [&](const std::string& kind, const std::string& section) {
    std::string out = Server({"localauthority", kind, "show"}).out;
    size_t at = out.find(section);
    std::smatch m;
    std::string rest = at == std::string::npos ? "" : out.substr(at);
    return std::regex_search(rest, m, std::regex("Authority ID: (\\S+)")) ? m[1].str() : "";
  };
  const std::string old_ca = authority("x509", "Active");
  ASSERT_EQ(Server({"localauthority", "x509", "prepare"}).exit_code, 0);
  const std::string new_ca = authority("x509", "Prepared");
  ASSERT_FALSE(new_ca.empty());
  ASSERT_EQ(Server({"localauthority", "x509", "activate", "-authorityID", new_ca}).exit_code, 0);
  ASSERT_EQ(Server({"localauthority", "x509", "taint", "-authorityID", old_ca}).exit_code, 0);

  // The workload's SVID is re-issued by the new CA: its issuer's key ID is
  // the new authority ID.
  ASSERT_TRUE(WaitFor(
      [&] {
        if (Client({"x509", dir_ + "/rotated"}).exit_code != 0) return false;
        RunResult text = RunCommand({"/usr/bin/openssl", "x509", "-in", dir_ + "/rotated/svid.pem", "-noout",
                                     "-ext", "authorityKeyIdentifier"});
        std::string aki;
        for (char c : text.out) {
          if (std::isxdigit(static_cast<unsigned char>(c))) aki += static_cast<char>(std::tolower(c));
        }
        return aki.find(new_ca) != std::string::npos;
      },
      absl::Seconds(20)))
      << agent_->Log();
  // It verifies against the bundle the workload holds (old and new roots).
  EXPECT_EQ(RunCommand({"/usr/bin/openssl", "verify", "-CAfile", dir_ + "/rotated/bundle.pem",
                        dir_ + "/rotated/svid.pem"})
                .exit_code,
            0);
}

TEST_F(AgentBinaryTest, RestartedAgentResumesWithoutAttestingAgain) {
  CreateEntry("/web");
  StartAgent(Token());
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/web"));
  ASSERT_EQ(agent_->Stop(SIGTERM), 0) << agent_->Log();
  // The join token is spent: only a resume can work.
  StartAgent("");
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/web")) << agent_->Log();
  EXPECT_THAT(Server({"agent", "count"}).out, HasSubstr("1 attested agent"));
}

TEST_F(AgentBinaryTest, AgentKeepsServingWhileTheServerIsDown) {
  CreateEntry("/web");
  StartAgent(Token());
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/web"));
  ASSERT_EQ(server_->Stop(SIGTERM), 0);
  RunResult r = Client({"x509", dir_ + "/offline"});
  EXPECT_EQ(r.exit_code, 0) << r.out << agent_->Log();
  EXPECT_THAT(r.out, HasSubstr("id spiffe://example.org/web"));
  RunResult verify = RunCommand({"/usr/bin/openssl", "verify", "-CAfile", dir_ + "/offline/bundle.pem",
                                 dir_ + "/offline/svid.pem"});
  EXPECT_EQ(verify.exit_code, 0);
  // And it reconnects when the server is back.
  StartServer();
  CreateEntry("/after");
  EXPECT_TRUE(WaitForSvid("spiffe://example.org/after")) << agent_->Log();
}

// x509pop with both real binaries: the server trusts a node CA, the agent
// proves it holds a node certificate's key, and a node alias entry matching
// the node's certificate CN carries the workload entry to it.
TEST_F(AgentBinaryTest, X509PopNodeAliasDeliversWorkloadEntries) {
  auto ca_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  crypto::CertificateTemplate t;
  t.serial = crypto::RandomSerial();
  t.subject = {{crypto::NameAttribute::kCommonName, "node ca"}};
  t.not_before = absl::Now() - absl::Minutes(1);
  t.not_after = absl::Now() + absl::Hours(1);
  t.is_ca = true;
  t.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign;
  crypto::Certificate ca = crypto::SelfSign(t, ca_key).value();
  auto node_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  t.serial = crypto::RandomSerial();
  t.subject = {{crypto::NameAttribute::kCommonName, "rack7-node1"}};
  t.is_ca = false;
  t.key_usage = crypto::kKeyUsageDigitalSignature;
  crypto::Certificate node =
      crypto::CertificateIssuer::Create(ca, ca_key).value()->Issue(t, node_key.public_key().spki_der()).value();
  WriteTestFile(dir_ + "/node-ca.pem", ca.ToPem());
  WriteTestFile(dir_ + "/node.pem", node.ToPem());
  WriteTestFile(dir_ + "/node.key", node_key.ToPkcs8Pem());

  WriteTestFile(dir_ + "/server.yaml", absl::StrCat("server:\n  trust_domain: example.org\n"
                                                    "plugins:\n  NodeAttestor:\n    x509pop:\n"
                                                    "      plugin_data:\n        ca_bundle_path: ",
                                                    dir_, "/node-ca.pem\n"));
  server_->Stop(SIGTERM);
  StartServer(dir_ + "/server.yaml");

  ASSERT_EQ(Server({"entry", "create", "-node", "-spiffeID", "spiffe://example.org/rack7", "-selector",
                    "x509pop:subject:cn:rack7-node1"})
                .exit_code,
            0);
  Server({"entry", "create", "-parentID", "spiffe://example.org/rack7", "-spiffeID", "spiffe://example.org/db",
          "-selector", "unix:uid:" + uid_});

  WriteTestFile(dir_ + "/agent.yaml", absl::StrCat("agent:\n  trust_domain: example.org\n"
                                                   "plugins:\n  NodeAttestor:\n    x509pop:\n"
                                                   "      plugin_data:\n        private_key_path: ",
                                                   dir_, "/node.key\n        certificate_path: ", dir_, "/node.pem\n"));
  StartAgent("", dir_ + "/agent.yaml");
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/db")) << agent_->Log() << server_->Log();
  RunResult agents = Server({"agent", "list"});
  EXPECT_THAT(agents.out, HasSubstr("spiffe://example.org/spire/agent/x509pop/"));
  EXPECT_THAT(agents.out, HasSubstr("x509pop"));
}

TEST_F(AgentBinaryTest, EvictedAgentLosesItsStream) {
  CreateEntry("/web");
  StartAgent(Token());
  ASSERT_TRUE(WaitForSvid("spiffe://example.org/web"));
  std::smatch m;
  std::string list = Server({"agent", "list"}).out;
  ASSERT_TRUE(std::regex_search(list, m, std::regex("SPIFFE ID\\s+: (\\S+)")));
  ASSERT_EQ(Server({"agent", "evict", "-spiffeID", m[1].str()}).exit_code, 0);
  // The join token is spent, so the agent cannot come back and says why.
  ASSERT_TRUE(WaitFor([&] { return !agent_->Running(); }, absl::Seconds(30))) << agent_->Log();
  EXPECT_THAT(agent_->Log(), HasSubstr("join token"));
}

}  // namespace
}  // namespace sigil::testing
