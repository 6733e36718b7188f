#include "attestors/node/x509pop/server.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "attestors/node/x509pop/test_util.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::attestors::node::x509pop {
namespace {

using ::sigil::attestors::node::x509pop::testing::CaTemplate;
using ::sigil::attestors::node::x509pop::testing::Fixture;
using ::sigil::attestors::node::x509pop::testing::FixtureCert;
using ::sigil::attestors::node::x509pop::testing::FixtureKey;
using ::sigil::attestors::node::x509pop::testing::FixturePath;
using ::sigil::attestors::node::x509pop::testing::IssueFrom;
using ::sigil::attestors::node::x509pop::testing::NodeTemplate;
using ::sigil::attestors::node::x509pop::testing::SelfSigned;
using ::sigil::attestors::node::x509pop::testing::TempDir;
using ::sigil::attestors::node::x509pop::testing::TestNow;

spiffe::TrustDomain Td(absl::string_view name = "example.org") { return *spiffe::TrustDomain::FromString(name); }

std::string Nonce(char first) {
  std::string n;
  for (size_t i = 0; i < kNonceSize; ++i) n.push_back(static_cast<char>(first + i));
  return n;
}

AgentPathValues Values() {
  AgentPathValues v;
  v.plugin_name = "x509pop";
  v.fingerprint = "0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33";
  v.trust_domain = "example.org";
  v.serial_number_hex = "0a1b2c3d4e5f";
  v.subject_common_name = "node-01";
  v.uri_san_selectors = {{"datacenter", "us-east-1"}};
  return v;
}

absl::StatusOr<std::string> Render(absl::string_view text) {
  absl::StatusOr<AgentPathTemplate> t = AgentPathTemplate::Parse(text);
  if (!t.ok()) return t.status();
  return t->Render(Values());
}

// ---- agent_path_template ----

TEST(AgentPathTemplate, DefaultIsPluginNameAndFingerprint) {
  EXPECT_EQ(*Render(kDefaultAgentPathTemplate), "/x509pop/0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33");
}

TEST(AgentPathTemplate, RendersEverySupportedPlaceholder) {
  EXPECT_EQ(*Render("/cn/{{ .Subject.CommonName }}"), "/cn/node-01");
  EXPECT_EQ(*Render("/{{.TrustDomain}}/{{ .PluginName}}/{{.Fingerprint }}"),
            "/example.org/x509pop/0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33");
  EXPECT_EQ(*Render("/serial/{{ .SerialNumberHex }}"), "/serial/0a1b2c3d4e5f");
  EXPECT_EQ(*Render("/dc/{{ .URISanSelectors.datacenter }}/x"), "/dc/us-east-1/x");
  EXPECT_EQ(*Render("/static/path"), "/static/path");
  EXPECT_EQ(*Render("{{\t.PluginName\n}}"), "x509pop");
}

TEST(AgentPathTemplate, UnknownPlaceholderIsRefusedAtParse) {
  for (absl::string_view text : {"/{{ .Foo }}", "/{{ .Subject.Organization }}", "/{{ .Subject }}",
                                 "/{{ .URISanSelectors }}", "/{{ .URISanSelectors.a.b }}", "/{{ .SVIDPathTrimmed }}"}) {
    SCOPED_TRACE(text);
    EXPECT_STATUS(AgentPathTemplate::Parse(text), absl::StatusCode::kInvalidArgument,
                  "agent_path_template: unknown placeholder \"{{ .");
  }
  EXPECT_STATUS(AgentPathTemplate::Parse("/{{ .Foo }}"), absl::StatusCode::kInvalidArgument,
                "supported: .PluginName, .Fingerprint, .TrustDomain, .SerialNumberHex, .Subject.CommonName");
}

TEST(AgentPathTemplate, ActionsOtherThanFieldsAreRefusedAtParse) {
  for (absl::string_view text :
       {"/{{ printf \"%s\" .Fingerprint }}", "/{{ .Fingerprint | upper }}", "/{{ if .Fingerprint }}x{{ end }}",
        "/{{- .Fingerprint -}}", "/{{ }}", "/{{ . }}", "/{{ .Subject..CommonName }}", "/{{ $x }}"}) {
    SCOPED_TRACE(text);
    EXPECT_STATUS(AgentPathTemplate::Parse(text), absl::StatusCode::kInvalidArgument,
                  "agent_path_template: unsupported action");
  }
}

TEST(AgentPathTemplate, UnterminatedActionIsRefused) {
  EXPECT_STATUS(AgentPathTemplate::Parse("/x/{{ .Fingerprint"), absl::StatusCode::kInvalidArgument,
                "unterminated action \"{{ .Fingerprint\"");
}

TEST(AgentPathTemplate, MissingSanKeyFailsToRender) {
  ASSERT_OK_AND_ASSIGN(AgentPathTemplate t, AgentPathTemplate::Parse("/{{ .URISanSelectors.rack }}"));
  EXPECT_STATUS(t.Render(Values()), absl::StatusCode::kInvalidArgument, "no x509pop URI SAN with key \"rack\"");
}

TEST(AgentIdForPath, PrefixesSpireAgent) {
  ASSERT_OK_AND_ASSIGN(spiffe::SpiffeId id, AgentIdForPath(Td(), "/x509pop/abc"));
  EXPECT_EQ(id.ToString(), "spiffe://example.org/spire/agent/x509pop/abc");
}

TEST(AgentIdForPath, AddsMissingLeadingSlashAsOlderSpireJoinedPaths) {
  ASSERT_OK_AND_ASSIGN(spiffe::SpiffeId id, AgentIdForPath(Td(), "x509pop/abc"));
  EXPECT_EQ(id.ToString(), "spiffe://example.org/spire/agent/x509pop/abc");
}

TEST(AgentIdForPath, RefusesInvalidPaths) {
  EXPECT_STATUS(AgentIdForPath(Td(), "/cn/node 01"), absl::StatusCode::kInvalidArgument,
                "agent path \"/spire/agent/cn/node 01\" is not a valid SPIFFE ID path");
  EXPECT_STATUS(AgentIdForPath(Td(), "/cn/"), absl::StatusCode::kInvalidArgument, "not a valid SPIFFE ID path");
  EXPECT_STATUS(AgentIdForPath(Td(), "/a//b"), absl::StatusCode::kInvalidArgument, "not a valid SPIFFE ID path");
}

// ---- GenerateChallenge ----

TEST(GenerateChallenge, EcLeafGetsAFreshEcdsaNonce) {
  auto leaf = SelfSigned(NodeTemplate("n")).cert;
  ASSERT_OK_AND_ASSIGN(Challenge a, GenerateChallenge(leaf));
  ASSERT_OK_AND_ASSIGN(Challenge b, GenerateChallenge(leaf));
  EXPECT_FALSE(a.rsa_signature.has_value());
  ASSERT_TRUE(a.ecdsa_signature.has_value());
  ASSERT_TRUE(b.ecdsa_signature.has_value());
  EXPECT_EQ(a.ecdsa_signature->nonce.size(), kNonceSize);
  EXPECT_NE(a.ecdsa_signature->nonce, b.ecdsa_signature->nonce);
}

TEST(GenerateChallenge, RsaLeafGetsAnRsaNonce) {
  ASSERT_OK_AND_ASSIGN(Challenge c, GenerateChallenge(FixtureCert("rsa_leaf.pem")));
  EXPECT_FALSE(c.ecdsa_signature.has_value());
  ASSERT_TRUE(c.rsa_signature.has_value());
  EXPECT_EQ(c.rsa_signature->nonce.size(), kNonceSize);
}

TEST(GenerateChallenge, LeafWithoutDigitalSignatureIsRefused) {
  crypto::CertificateTemplate t = NodeTemplate("n");
  t.key_usage = crypto::kKeyUsageKeyEncipherment;
  EXPECT_STATUS(GenerateChallenge(SelfSigned(t).cert), absl::StatusCode::kPermissionDenied,
                "certificate not intended for digital signature use");
}

TEST(GenerateChallenge, LeafWithoutKeyUsageIsRefusedAsInSpire) {
  crypto::CertificateTemplate t = NodeTemplate("n");
  t.key_usage = 0;
  EXPECT_STATUS(GenerateChallenge(SelfSigned(t).cert), absl::StatusCode::kPermissionDenied,
                "certificate not intended for digital signature use");
}

TEST(GenerateChallenge, Ed25519LeafIsRefused) {
  EXPECT_STATUS(GenerateChallenge(FixtureCert("ed25519_leaf.pem")), absl::StatusCode::kPermissionDenied,
                "unsupported public key type");
}

// ---- VerifyChallengeResponse against answers OpenSSL computed ----

// The EC answer as a SPIRE agent sends it: r and s as minimal big-endian
// bytes of the DER signature OpenSSL made over SHA-256(nonce || nonce).
Response OpenSslEcResponse() {
  absl::StatusOr<std::string> raw = crypto::EcdsaDerToRaw(Fixture("ec_response_sig.der"), 32);
  EXPECT_TRUE(raw.ok()) << raw.status();
  auto minimal = [](absl::string_view v) {
    while (!v.empty() && v.front() == '\0') v.remove_prefix(1);
    return std::string(v);
  };
  Response r;
  r.ecdsa_signature = EcdsaSignatureResponse{Nonce(32), minimal(raw->substr(0, 32)), minimal(raw->substr(32))};
  return r;
}

Challenge EcChallenge(const std::string& nonce) {
  Challenge c;
  c.ecdsa_signature = EcdsaSignatureChallenge{nonce};
  return c;
}

Challenge RsaChallenge(const std::string& nonce) {
  Challenge c;
  c.rsa_signature = RsaSignatureChallenge{nonce};
  return c;
}

TEST(VerifyChallengeResponse, AcceptsOpenSslEcdsaAnswer) {
  const crypto::PublicKey key = FixtureCert("ec_leaf.pem").public_key();
  EXPECT_OK(VerifyChallengeResponse(key, EcChallenge(Nonce(0)), OpenSslEcResponse()));
}

TEST(VerifyChallengeResponse, AcceptsEcdsaIntegersWithLeadingZeros) {
  const crypto::PublicKey key = FixtureCert("ec_leaf.pem").public_key();
  Response r = OpenSslEcResponse();
  r.ecdsa_signature->r.insert(0, 3, '\0');
  r.ecdsa_signature->s.insert(0, 1, '\0');
  EXPECT_OK(VerifyChallengeResponse(key, EcChallenge(Nonce(0)), r));
}

TEST(VerifyChallengeResponse, AcceptsOpenSslRsaPssAnswer) {
  const crypto::PublicKey key = FixtureCert("rsa_leaf.pem").public_key();
  Response r;
  r.rsa_signature = RsaSignatureResponse{Nonce(32), Fixture("rsa_response_sig.bin")};
  EXPECT_OK(VerifyChallengeResponse(key, RsaChallenge(Nonce(0)), r));
}

// SPIRE agents sign with the longest PSS salt.
TEST(VerifyChallengeResponse, AcceptsSpireStyleMaxSaltRsaAnswer) {
  const crypto::PublicKey key = FixtureCert("rsa_leaf.pem").public_key();
  Response r;
  r.rsa_signature = RsaSignatureResponse{Nonce(32), Fixture("rsa_response_sig_maxsalt.bin")};
  EXPECT_OK(VerifyChallengeResponse(key, RsaChallenge(Nonce(0)), r));
}

TEST(VerifyChallengeResponse, RefusesAnswerToAnotherNonce) {
  const crypto::PublicKey ec = FixtureCert("ec_leaf.pem").public_key();
  EXPECT_STATUS(VerifyChallengeResponse(ec, EcChallenge(Nonce(1)), OpenSslEcResponse()),
                absl::StatusCode::kPermissionDenied, "ECDSA signature verify failed");
  const crypto::PublicKey rsa = FixtureCert("rsa_leaf.pem").public_key();
  Response r;
  r.rsa_signature = RsaSignatureResponse{Nonce(32), Fixture("rsa_response_sig.bin")};
  EXPECT_STATUS(VerifyChallengeResponse(rsa, RsaChallenge(Nonce(1)), r), absl::StatusCode::kPermissionDenied,
                "RSA signature verify failed");
}

TEST(VerifyChallengeResponse, RefusesTamperedSignatures) {
  const crypto::PublicKey key = FixtureCert("ec_leaf.pem").public_key();
  Response r = OpenSslEcResponse();
  r.ecdsa_signature->s.back() ^= 1;
  EXPECT_STATUS(VerifyChallengeResponse(key, EcChallenge(Nonce(0)), r), absl::StatusCode::kPermissionDenied,
                "ECDSA signature verify failed");
  Response wide = OpenSslEcResponse();
  wide.ecdsa_signature->r.insert(0, 1, '\x01');
  EXPECT_STATUS(VerifyChallengeResponse(key, EcChallenge(Nonce(0)), wide), absl::StatusCode::kPermissionDenied,
                "ECDSA signature verify failed");
  Response zero = OpenSslEcResponse();
  zero.ecdsa_signature->r.clear();
  EXPECT_STATUS(VerifyChallengeResponse(key, EcChallenge(Nonce(0)), zero), absl::StatusCode::kPermissionDenied,
                "ECDSA signature verify failed");
}

TEST(VerifyChallengeResponse, RefusesMismatchedMembersAsSpireDoes) {
  const crypto::PublicKey ec = FixtureCert("ec_leaf.pem").public_key();
  const crypto::PublicKey rsa = FixtureCert("rsa_leaf.pem").public_key();
  Response rsa_response;
  rsa_response.rsa_signature = RsaSignatureResponse{Nonce(32), "sig"};
  EXPECT_STATUS(VerifyChallengeResponse(ec, RsaChallenge(Nonce(0)), OpenSslEcResponse()),
                absl::StatusCode::kPermissionDenied, "expecting ECDSA challenge");
  EXPECT_STATUS(VerifyChallengeResponse(ec, EcChallenge(Nonce(0)), rsa_response), absl::StatusCode::kPermissionDenied,
                "expecting ECDSA response");
  EXPECT_STATUS(VerifyChallengeResponse(rsa, EcChallenge(Nonce(0)), rsa_response), absl::StatusCode::kPermissionDenied,
                "expecting RSA challenge");
  EXPECT_STATUS(VerifyChallengeResponse(rsa, RsaChallenge(Nonce(0)), OpenSslEcResponse()),
                absl::StatusCode::kPermissionDenied, "expecting RSA response");
}

TEST(VerifyChallengeResponse, RefusesResponseNonceOfWrongLength) {
  const crypto::PublicKey key = FixtureCert("ec_leaf.pem").public_key();
  Response r = OpenSslEcResponse();
  r.ecdsa_signature->nonce.pop_back();
  EXPECT_STATUS(VerifyChallengeResponse(key, EcChallenge(Nonce(0)), r), absl::StatusCode::kPermissionDenied,
                "invalid response nonce");
}

// ---- selectors ----

TEST(UriSanSelectors, ReadsOnlyX509PopSansOfTheTrustDomain) {
  crypto::CertificateTemplate t = NodeTemplate("n");
  t.uri_sans = {"x509pop://example.org/datacenter/us-east-1",
                "x509pop://example.org/key/path/to/value",
                "x509pop://example.org//padded/value//",
                "x509pop://example.org/enc%2Dkey/v%20x?query#frag",
                "x509pop://example.org/novalue",
                "x509pop://example.org/bad/%zz",
                "x509pop://other.org/env/prod",
                "x509pop://example.orgx/env/prod",
                "spiffe://example.org/env/prod"};
  auto selectors = UriSanSelectors(SelfSigned(t).cert, Td());
  std::map<std::string, std::string> expected = {
      {"datacenter", "us-east-1"}, {"key", "path/to/value"}, {"padded", "value"}, {"enc-key", "v x"}};
  EXPECT_EQ(selectors, expected);
}

TEST(BuildSelectors, OpenSslLeafHasSpireSelectors) {
  const crypto::Certificate ca = FixtureCert("ca.pem");
  const crypto::Certificate leaf = FixtureCert("ec_leaf.pem");
  Selectors got = BuildSelectors(leaf, {leaf, ca}, Td());
  Selectors want = {{"x509pop", "subject:cn:openssl-ec-node"},
                    {"x509pop", "ca:fingerprint:c1991ce1c74bffea37a924fb0bf4f8fd1e62a61a"},
                    {"x509pop", "serialnumber:0a1b2c3d4e5f"},
                    {"x509pop", "san:datacenter:us-east-1"}};
  EXPECT_EQ(got, want);
}

TEST(BuildSelectors, NoCommonNameSelectorWithoutCommonName) {
  crypto::CertificateTemplate t = NodeTemplate("n");
  t.subject = {{crypto::NameAttribute::kOrganization, "O"}};
  t.serial = std::string("\x01\x02", 2);
  auto leaf = SelfSigned(t).cert;
  Selectors want = {{"x509pop", "serialnumber:0102"}};
  EXPECT_EQ(BuildSelectors(leaf, {leaf}, Td()), want);
}

TEST(BuildSelectors, RepeatedCaFingerprintsAppearOnce) {
  auto root = SelfSigned(CaTemplate("root"));
  auto leaf = IssueFrom(root, NodeTemplate("n")).cert;
  Selectors got = BuildSelectors(leaf, {leaf, root.cert, root.cert}, Td());
  int count = 0;
  for (const Selector& s : got) count += absl::StartsWith(s.value, "ca:fingerprint:") ? 1 : 0;
  EXPECT_EQ(count, 1);
}

// ---- configuration ----

TEST(ServerConfig, RequiresOneBundleSetting) {
  FakeClock clock(TestNow());
  EXPECT_STATUS(X509PopServerAttestor::Create(Td(), ServerConfig{}, &clock), absl::StatusCode::kInvalidArgument,
                "nodeattestor(x509pop): one of ca_bundle_path or ca_bundle_paths must be configured");
  ServerConfig both;
  both.ca_bundle_path = FixturePath("ca.pem");
  both.ca_bundle_paths = {FixturePath("ca.pem")};
  EXPECT_STATUS(X509PopServerAttestor::Create(Td(), both, &clock), absl::StatusCode::kInvalidArgument,
                "only one of ca_bundle_path or ca_bundle_paths can be configured, not both");
}

TEST(ServerConfig, LoadsCaBundlePath) {
  FakeClock clock(TestNow());
  ServerConfig config;
  config.ca_bundle_path = FixturePath("ca.pem");
  ASSERT_OK_AND_ASSIGN(auto attestor, X509PopServerAttestor::Create(Td(), config, &clock));
  EXPECT_EQ(attestor->name(), "x509pop");
  ASSERT_EQ(attestor->trusted_cas().size(), 1u);
  EXPECT_EQ(attestor->trusted_cas()[0], FixtureCert("ca.pem"));
}

TEST(ServerConfig, LoadsEveryCaBundlePaths) {
  FakeClock clock(TestNow());
  TempDir dir;
  auto other = SelfSigned(CaTemplate("other"));
  auto third = SelfSigned(CaTemplate("third"));
  ServerConfig config;
  config.ca_bundle_paths = {FixturePath("ca.pem"), dir.Write("two.pem", other.cert.ToPem() + third.cert.ToPem())};
  ASSERT_OK_AND_ASSIGN(auto attestor, X509PopServerAttestor::Create(Td(), config, &clock));
  EXPECT_EQ(attestor->trusted_cas().size(), 3u);
}

TEST(ServerConfig, ReportsEveryProblemAtOnce) {
  FakeClock clock(TestNow());
  TempDir dir;
  ServerConfig config;
  config.ca_bundle_paths = {dir.path() + "/missing.pem", dir.Write("empty.pem", "no certificates here\n")};
  config.agent_path_template = "/{{ .Nope }}";
  absl::StatusOr<std::unique_ptr<X509PopServerAttestor>> made = X509PopServerAttestor::Create(Td(), config, &clock);
  EXPECT_STATUS(made, absl::StatusCode::kInvalidArgument,
                absl::StrCat("unable to load trust bundle \"", dir.path(), "/missing.pem\""));
  EXPECT_STATUS(made, absl::StatusCode::kInvalidArgument, "empty.pem\": no PEM \"CERTIFICATE\" block found");
  EXPECT_STATUS(made, absl::StatusCode::kInvalidArgument, "unknown placeholder \"{{ .Nope }}\"");
}

TEST(ServerConfig, RefusesUnknownTemplatePlaceholderAtConstruction) {
  FakeClock clock(TestNow());
  ServerConfig config;
  config.ca_bundle_path = FixturePath("ca.pem");
  config.agent_path_template = "/x/{{ .Subject.Country }}";
  EXPECT_STATUS(X509PopServerAttestor::Create(Td(), config, &clock), absl::StatusCode::kInvalidArgument,
                "nodeattestor(x509pop): agent_path_template: unknown placeholder \"{{ .Subject.Country }}\"");
}

}  // namespace
}  // namespace sigil::attestors::node::x509pop
