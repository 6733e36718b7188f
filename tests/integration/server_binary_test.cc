// End-to-end tests of the real sigil-server binary driven through its CLI,
// with the results checked by independent tools (openssl) and the SPIFFE
// library.

#include <signal.h>
#include <sys/stat.h>

#include <regex>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/bundle.h"
#include "spiffe/jwtsvid.h"
#include "tests/util/process.h"

namespace sigil::testing {
namespace {

using ::testing::HasSubstr;

class ServerBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sigil-it-server");
    socket_ = dir_ + "/admin/api.sock";
    port_ = FreePort();
    StartServer();
  }

  void TearDown() override {
    if (server_) server_->Stop(SIGTERM);
  }

  std::string Bin() { return BinDir() + "/sigil-server"; }

  void StartServer() {
    server_ = std::make_unique<Process>(
        std::vector<std::string>{Bin(), "run", "-trustDomain", "example.org", "-dataDir", dir_ + "/data",
                                 "-socketPath", socket_, "-bindAddress", "127.0.0.1", "-serverPort",
                                 std::to_string(port_)},
        dir_ + "/server.log");
    ASSERT_TRUE(WaitFor([&] { return Cli({"healthcheck"}).exit_code == 0; }, absl::Seconds(30), kCommandPollInterval))
        << server_->Log();
  }

  RunResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), Bin());
    // Flags go after the subcommand words; -socketPath is accepted by all.
    args.push_back("-socketPath");
    args.push_back(socket_);
    return RunCommand(args);
  }

  static std::string EntryId(const std::string& out) {
    std::smatch m;
    std::regex re("Entry ID\\s+: (\\S+)");
    return std::regex_search(out, m, re) ? m[1].str() : "";
  }

  std::string dir_;
  std::string socket_;
  int port_ = 0;
  std::unique_ptr<Process> server_;
};

TEST_F(ServerBinaryTest, EntriesAndTokensThroughTheCli) {
  RunResult token = Cli({"token", "generate", "-spiffeID", "spiffe://example.org/host1", "-ttl", "600"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  EXPECT_THAT(token.out, HasSubstr("Token: "));

  RunResult create = Cli({"entry", "create", "-spiffeID", "spiffe://example.org/web", "-parentID",
                          "spiffe://example.org/host1", "-selector", "unix:uid:1000", "-selector",
                          "unix:gid:1000", "-x509SVIDTTL", "300", "-dns", "web.example.org"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  std::string id = EntryId(create.out);
  ASSERT_FALSE(id.empty()) << create.out;

  RunResult dup = Cli({"entry", "create", "-spiffeID", "spiffe://example.org/web", "-parentID",
                       "spiffe://example.org/host1", "-selector", "unix:uid:1000", "-selector", "unix:gid:1000"});
  EXPECT_NE(dup.exit_code, 0);
  EXPECT_THAT(dup.out + dup.err, HasSubstr("AlreadyExists"));

  RunResult show = Cli({"entry", "show", "-entryID", id});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("spiffe://example.org/web"));
  EXPECT_THAT(show.out, HasSubstr("unix:gid:1000"));

  RunResult json = Cli({"entry", "show", "-entryID", id, "-output", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"x509_svid_ttl\":300"));

  RunResult count = Cli({"entry", "count"});
  EXPECT_THAT(count.out, HasSubstr("2 registration entries"));  // the token's node alias and ours

  RunResult bad = Cli({"entry", "create", "-spiffeID", "spiffe://Example.org/x", "-parentID",
                       "spiffe://example.org/host1", "-selector", "unix:uid:1"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("spiffe"));

  RunResult del = Cli({"entry", "delete", "-entryID", id});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_NE(Cli({"entry", "show", "-entryID", id}).exit_code, 0);
}

TEST_F(ServerBinaryTest, MintedX509SvidPassesOpenssl) {
  std::string out = dir_ + "/minted";
  RunResult mint = Cli({"x509", "mint", "-spiffeID", "spiffe://example.org/db", "-dns", "db.example.org",
                        "-ttl", "10m", "-write", out});
  ASSERT_EQ(mint.exit_code, 0) << mint.err;
  struct stat st;
  ASSERT_EQ(::stat((out + "/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  RunResult verify = RunCommand({"/usr/bin/openssl", "verify", "-x509_strict", "-CAfile", out + "/bundle.pem",
                          out + "/svid.pem"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_THAT(verify.out, HasSubstr(": OK"));

  RunResult text = RunCommand({"/usr/bin/openssl", "x509", "-in", out + "/svid.pem", "-noout", "-text"});
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.out, HasSubstr("URI:spiffe://example.org/db"));
  EXPECT_THAT(text.out, HasSubstr("DNS:db.example.org"));
  EXPECT_THAT(text.out, HasSubstr("X509v3 Key Usage: critical"));
  EXPECT_THAT(text.out, HasSubstr("Digital Signature, Key Encipherment, Key Agreement"));
  EXPECT_THAT(text.out, HasSubstr("TLS Web Server Authentication, TLS Web Client Authentication"));
  EXPECT_THAT(text.out, HasSubstr("CA:FALSE"));

  // The key on disk belongs to the certificate.
  RunResult pub_cert = RunCommand({"/usr/bin/openssl", "x509", "-in", out + "/svid.pem", "-noout", "-pubkey"});
  RunResult pub_key = RunCommand({"/usr/bin/openssl", "pkey", "-in", out + "/key.pem", "-pubout"});
  EXPECT_EQ(pub_cert.out, pub_key.out);
}

TEST_F(ServerBinaryTest, MintedJwtSvidValidatesAgainstTheSpiffeBundle) {
  RunResult mint = Cli({"jwt", "mint", "-spiffeID", "spiffe://example.org/api", "-audience", "payments"});
  ASSERT_EQ(mint.exit_code, 0) << mint.err;
  std::string token(absl::StripAsciiWhitespace(mint.out));
  RunResult bundle = Cli({"bundle", "show", "-format", "spiffe"});
  ASSERT_EQ(bundle.exit_code, 0) << bundle.err;

  auto td = spiffe::TrustDomain::FromString("example.org").value();
  auto parsed = spiffe::Bundle::ParseSpiffeJson(td, bundle.out);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << bundle.out;
  spiffe::BundleSet set;
  set.Add(*parsed);
  auto svid = spiffe::ParseAndValidate(token, set, "payments", absl::Now());
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->id.ToString(), "spiffe://example.org/api");
  EXPECT_FALSE(spiffe::ParseAndValidate(token, set, "other", absl::Now()).ok());

  // The PEM form of the bundle holds the same X.509 authorities.
  RunResult pem = Cli({"bundle", "show"});
  ASSERT_EQ(pem.exit_code, 0);
  EXPECT_EQ(spiffe::Bundle::ParseX509Pem(td, pem.out)->X509AuthoritiesDer(), parsed->X509AuthoritiesDer());
}

TEST_F(ServerBinaryTest, EverythingSurvivesRestart) {
  RunResult create = Cli({"entry", "create", "-spiffeID", "spiffe://example.org/keep", "-parentID",
                          "spiffe://example.org/host1", "-selector", "unix:uid:0"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  std::string id = EntryId(create.out);
  RunResult token = Cli({"token", "generate", "-ttl", "600"});
  ASSERT_EQ(token.exit_code, 0);
  std::string bundle_before = Cli({"bundle", "show", "-format", "spiffe"}).out;

  ASSERT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
  EXPECT_THAT(server_->Log(), HasSubstr("sigil-server stopped"));
  StartServer();

  EXPECT_EQ(Cli({"entry", "show", "-entryID", id}).exit_code, 0);
  EXPECT_EQ(Cli({"bundle", "show", "-format", "spiffe"}).out, bundle_before);
}

TEST_F(ServerBinaryTest, AcknowledgedCreateSurvivesKill9) {
  RunResult create = Cli({"entry", "create", "-spiffeID", "spiffe://example.org/durable", "-parentID",
                          "spiffe://example.org/host1", "-selector", "unix:uid:0"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  std::string id = EntryId(create.out);
  // No grace: the process dies right after the reply.
  server_->Stop(SIGKILL);
  StartServer();
  RunResult show = Cli({"entry", "show", "-entryID", id});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("spiffe://example.org/durable"));
}

TEST_F(ServerBinaryTest, BadConfigurationIsRefusedWithItsKey) {
  std::string config = dir_ + "/bad.yaml";
  WriteTestFile(config, "server:\n  trust_domain: example.org\n  bind_prot: 8081\n");
  RunResult r = RunCommand({Bin(), "run", "-config", config});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("server.bind_prot: unknown key"));
  RunResult v = RunCommand({Bin(), "validate", "-config", config});
  EXPECT_EQ(v.exit_code, 1);
  WriteTestFile(config, "server:\n  trust_domain: example.org\n");
  EXPECT_EQ(RunCommand({Bin(), "validate", "-config", config}).exit_code, 0);
}

TEST_F(ServerBinaryTest, SecondServerOnTheSameDataDirFailsCleanly) {
  RunResult r = RunCommand({Bin(), "run", "-trustDomain", "example.org", "-dataDir", dir_ + "/data", "-socketPath",
                     dir_ + "/other.sock", "-serverPort", std::to_string(FreePort())},
                    absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("in use by another sigil-server"));
}

}  // namespace
}  // namespace sigil::testing
