#include "spiffe/bundle.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spiffe/crypto/encoding.h"
#include "spiffe/spiffe_test_util.h"

namespace sigil::spiffe {
namespace {

using ::sigil::crypto::KeyType;
using ::sigil::spiffe::testing::MakeRootCa;
using ::sigil::spiffe::testing::TestCa;
using ::sigil::spiffe::testing::TestKey;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// A self-signed Ed25519 CA certificate, whose key has no EC/RSA JWK form.
// Test-only, made with:
//   openssl req -x509 -newkey ed25519 -nodes -keyout /dev/null
//     -subj "/O=Sigil test/CN=ed25519 root" -days 36500
//     -addext "basicConstraints=critical,CA:true"
//     -addext "keyUsage=critical,keyCertSign"
//     -addext "subjectAltName=URI:spiffe://example.org"
// (one command line).
constexpr char kEd25519RootPem[] = R"(-----BEGIN CERTIFICATE-----
MIIBojCCAVSgAwIBAgIUO4C0RyLXfXDkezNGlQppgzZHn+gwBQYDK2VwMCwxEzAR
BgNVBAoMClNpZ2lsIHRlc3QxFTATBgNVBAMMDGVkMjU1MTkgcm9vdDAgFw0yNjEx
MjkxMjQ3MTBaGA8yMTI2MTEwNTEyNDcxMFowLDETMBEGA1UECgwKU2lnaWwgdGVz
dDEVMBMGA1UEAwwMZWQyNTUxOSByb290MCowBQYDK2VwAyEAMMNTeTG7deefkvZi
noOXp/PegOR1HnYoT/KJGGYkC0ijgYUwgYIwHQYDVR0OBBYEFKpfefce9/dK/b4j
yGEnRIZvDjoHMB8GA1UdIwQYMBaAFKpfefce9/dK/b4jyGEnRIZvDjoHMA8GA1Ud
EwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMB8GA1UdEQQYMBaGFHNwaWZmZTov
L2V4YW1wbGUub3JnMAUGAytlcANBAPKEDabCMAzOAxiWe6MUfsLDRVQY8V0vueud
CM33Pp93Fl6avpvGMusqPsp1DVCbp55ryzPfPJMp9ZveNsJtAAA=
-----END CERTIFICATE-----
)";

TrustDomain Td(const char* name = "example.org") { return TrustDomain::FromString(name).value(); }

class BundleTest : public ::testing::Test {
 protected:
  BundleTest()
      : ec_root_(MakeRootCa("example.org", TestKey(KeyType::kEcP256))),
        rsa_root_(MakeRootCa("example.org", TestKey(KeyType::kRsa2048))) {}

  // A bundle with two X.509 authorities, an EC and an RSA JWT authority,
  // a sequence number and a refresh hint.
  Bundle FullBundle() const {
    Bundle b(Td());
    b.AddX509Authority(ec_root_.cert);
    b.AddX509Authority(rsa_root_.cert);
    EXPECT_TRUE(b.AddJwtAuthority({"ec-kid", TestKey(KeyType::kEcP384).public_key()}).ok());
    EXPECT_TRUE(b.AddJwtAuthority({"rsa-kid", TestKey(KeyType::kRsa2048, 1).public_key()}).ok());
    b.set_sequence_number(42);
    b.set_refresh_hint(absl::Minutes(5));
    return b;
  }

  // The JWK of an EC JWT authority, as another implementation would write it.
  Json EcJwtKey(const std::string& kid, int index = 0) const {
    crypto::JwkKeyParams p = crypto::ToJwkParams(TestKey(KeyType::kEcP256, index).public_key()).value();
    return Json{{"kty", p.kty}, {"crv", p.crv}, {"x", p.x}, {"y", p.y}, {"use", "jwt-svid"},
                {"kid", kid}};
  }

  Json X509Key(const crypto::Certificate& cert) const {
    return Json{{"kty", cert.public_key().algorithm() == crypto::KeyAlgorithm::kEc ? "EC" : "RSA"},
                {"use", "x509-svid"},
                {"x5c", Json::array({crypto::Base64Encode(cert.der())})}};
  }

  absl::Status ParseError(const Json& doc) const {
    absl::StatusOr<Bundle> b = Bundle::ParseSpiffeJson(Td(), doc.dump());
    return b.ok() ? absl::OkStatus() : b.status();
  }

  TestCa ec_root_;
  TestCa rsa_root_;
};

TEST_F(BundleTest, SpiffeJsonRoundTripsAFullBundle) {
  Bundle b = FullBundle();
  absl::StatusOr<Bundle> parsed = Bundle::ParseSpiffeJson(Td(), b.ToSpiffeJson());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, b);
  EXPECT_EQ(parsed->x509_authorities(), b.x509_authorities());
  ASSERT_EQ(parsed->jwt_authorities().size(), 2u);
  EXPECT_EQ(parsed->sequence_number(), 42u);
  EXPECT_EQ(parsed->refresh_hint(), absl::Minutes(5));
  // Indented output parses to the same bundle.
  absl::StatusOr<Bundle> indented = Bundle::ParseSpiffeJson(Td(), b.ToSpiffeJson(2));
  ASSERT_TRUE(indented.ok()) << indented.status();
  EXPECT_EQ(*indented, b);
  EXPECT_NE(b.ToSpiffeJson(2).find('\n'), std::string::npos);
  EXPECT_EQ(b.ToSpiffeJson().find('\n'), std::string::npos);
}

TEST_F(BundleTest, SpiffeJsonRoundTripsAnEmptyBundle) {
  Bundle b(Td());
  EXPECT_EQ(b.ToSpiffeJson(), R"({"keys":[]})");
  absl::StatusOr<Bundle> parsed = Bundle::ParseSpiffeJson(Td(), b.ToSpiffeJson());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, b);
  EXPECT_FALSE(parsed->sequence_number().has_value());
  EXPECT_FALSE(parsed->refresh_hint().has_value());
}

TEST_F(BundleTest, ToSpiffeJsonWritesTheStandardMembers) {
  Json doc = Json::parse(FullBundle().ToSpiffeJson());
  EXPECT_EQ(doc["spiffe_sequence"], 42);
  EXPECT_EQ(doc["spiffe_refresh_hint"], 300);
  ASSERT_EQ(doc["keys"].size(), 4u);
  const Json& x509 = doc["keys"][0];
  EXPECT_EQ(x509["use"], "x509-svid");
  EXPECT_EQ(x509["kty"], "EC");
  EXPECT_EQ(x509["crv"], "P-256");
  EXPECT_FALSE(x509.contains("kid"));  // X509-SVID §6.1
  ASSERT_EQ(x509["x5c"].size(), 1u);
  // x5c is standard base64 (with padding), not base64url.
  EXPECT_EQ(crypto::Base64Decode(x509["x5c"][0].get<std::string>()).value(), ec_root_.cert.der());
  EXPECT_EQ(doc["keys"][1]["kty"], "RSA");
  EXPECT_TRUE(doc["keys"][1].contains("n"));
  EXPECT_TRUE(doc["keys"][1].contains("e"));
  const Json& jwt = doc["keys"][2];
  EXPECT_EQ(jwt["use"], "jwt-svid");
  EXPECT_EQ(jwt["kid"], "ec-kid");
  EXPECT_EQ(jwt["kty"], "EC");
  EXPECT_EQ(jwt["crv"], "P-384");
  EXPECT_FALSE(jwt.contains("x5c"));
  EXPECT_EQ(doc["keys"][3]["kid"], "rsa-kid");
  EXPECT_EQ(doc["keys"][3]["kty"], "RSA");
}

TEST_F(BundleTest, ParsesABundleWrittenByHand) {
  Json doc = {{"spiffe_sequence", 7},
              {"spiffe_refresh_hint", 2419200},
              {"keys", Json::array({X509Key(ec_root_.cert), EcJwtKey("k1")})}};
  absl::StatusOr<Bundle> b = Bundle::ParseSpiffeJson(Td(), doc.dump());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->trust_domain(), Td());
  ASSERT_EQ(b->x509_authorities().size(), 1u);
  EXPECT_EQ(b->x509_authorities()[0], ec_root_.cert);
  const JwtAuthority* a = b->FindJwtAuthority("k1");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->public_key, TestKey(KeyType::kEcP256).public_key());
  EXPECT_EQ(b->FindJwtAuthority("k2"), nullptr);
  EXPECT_EQ(b->sequence_number(), 7u);
  EXPECT_EQ(b->refresh_hint(), absl::Hours(24 * 28));
}

TEST_F(BundleTest, RootWithoutJwkFormRoundTrips) {
  absl::StatusOr<std::vector<crypto::Certificate>> ed = crypto::Certificate::ParsePemChain(kEd25519RootPem);
  ASSERT_TRUE(ed.ok()) << ed.status();
  Bundle b(Td());
  b.AddX509Authority(ed->front());
  b.AddX509Authority(ec_root_.cert);
  Json doc = Json::parse(b.ToSpiffeJson());
  EXPECT_FALSE(doc["keys"][0].contains("kty"));
  EXPECT_EQ(doc["keys"][0]["use"], "x509-svid");
  absl::StatusOr<Bundle> parsed = Bundle::ParseSpiffeJson(Td(), b.ToSpiffeJson());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, b);
  // Claiming an EC key for it is a contradiction.
  doc["keys"][0]["kty"] = "EC";
  absl::Status s = ParseError(doc);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("keys[0]: \"kty\" is \"EC\" but the x5c certificate's key is "
                                     "neither EC nor RSA"));
  // A writer that labels it with the standard OKP type gets it ignored (§4.2.1).
  doc["keys"][0]["kty"] = "OKP";
  absl::StatusOr<Bundle> okp = Bundle::ParseSpiffeJson(Td(), doc.dump());
  ASSERT_TRUE(okp.ok()) << okp.status();
  EXPECT_EQ(okp->x509_authorities().size(), 1u);
}

TEST_F(BundleTest, IgnoresKeysOfUnknownUseOrType) {
  Json okp = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "abc"}, {"use", "jwt-svid"}, {"kid", "ed"}};
  Json unknown_use = EcJwtKey("other");
  unknown_use["use"] = "sig";
  Json no_use = EcJwtKey("nouse");
  no_use.erase("use");
  Json wrong_case_use = EcJwtKey("case");
  wrong_case_use["use"] = "JWT-SVID";
  Json doc = {{"keys", Json::array({okp, unknown_use, no_use, wrong_case_use, EcJwtKey("k")})}};
  absl::StatusOr<Bundle> b = Bundle::ParseSpiffeJson(Td(), doc.dump());
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->jwt_authorities().size(), 1u);
  EXPECT_EQ(b->jwt_authorities()[0].key_id, "k");
  EXPECT_TRUE(b->x509_authorities().empty());
}

TEST_F(BundleTest, IgnoresUnknownTopLevelAndKeyMembers) {
  Json key = EcJwtKey("k");
  key["alg"] = "ES256";
  key["x-custom"] = {1, 2};
  Json doc = {{"keys", Json::array({key})}, {"extra", "yes"}};
  absl::StatusOr<Bundle> b = Bundle::ParseSpiffeJson(Td(), doc.dump());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->jwt_authorities().size(), 1u);
}

TEST_F(BundleTest, AcceptsX509KeyWithoutPublicKeyParameters) {
  Json doc = {{"keys", Json::array({X509Key(rsa_root_.cert)})}};
  absl::StatusOr<Bundle> b = Bundle::ParseSpiffeJson(Td(), doc.dump());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->x509_authorities().size(), 1u);
  // Even without kty: the certificate defines the key.
  Json no_kty = X509Key(rsa_root_.cert);
  no_kty.erase("kty");
  b = Bundle::ParseSpiffeJson(Td(), Json{{"keys", Json::array({no_kty})}}.dump());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->x509_authorities().size(), 1u);
}

TEST_F(BundleTest, DuplicateKeysCollapse) {
  Json doc = {{"keys", Json::array({X509Key(ec_root_.cert), X509Key(ec_root_.cert),
                                    EcJwtKey("k"), EcJwtKey("k")})}};
  absl::StatusOr<Bundle> b = Bundle::ParseSpiffeJson(Td(), doc.dump());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->x509_authorities().size(), 1u);
  EXPECT_EQ(b->jwt_authorities().size(), 1u);
}

struct MalformedCase {
  std::string name;
  std::string json;
  std::string message;
};

TEST_F(BundleTest, RejectsMalformedJsonWithAClearError) {
  Json ec = EcJwtKey("k");
  auto with = [](Json key, const std::string& member, Json value) {
    key[member] = std::move(value);
    return Json{{"keys", Json::array({std::move(key)})}}.dump();
  };
  auto without = [](Json key, const std::string& member) {
    key.erase(member);
    return Json{{"keys", Json::array({std::move(key)})}}.dump();
  };
  Json x509 = X509Key(ec_root_.cert);
  std::string rsa_n = crypto::ToJwkParams(rsa_root_.cert.public_key()).value().n;
  std::string other_x = crypto::ToJwkParams(TestKey(KeyType::kEcP256, 1).public_key()).value().x;
  Json other_ec_key = EcJwtKey("k", 1);
  std::string two_certs = with(x509, "x5c",
                               Json::array({crypto::Base64Encode(ec_root_.cert.der()),
                                            crypto::Base64Encode(rsa_root_.cert.der())}));

  const std::vector<MalformedCase> cases = {
      {"not json", "{keys:", "malformed JSON"},
      {"empty", "", "malformed JSON"},
      {"trailing garbage", R"({"keys":[]} x)", "malformed JSON"},
      {"array", "[]", "JSON must be an object"},
      {"string", R"("keys")", "JSON must be an object"},
      {"no keys", R"({"spiffe_sequence":1})", "missing \"keys\""},
      {"null keys", R"({"keys":null})", "missing \"keys\""},
      {"keys object", R"({"keys":{}})", "\"keys\" must be an array"},
      {"negative sequence", R"({"keys":[],"spiffe_sequence":-1})",
       "\"spiffe_sequence\" must be a non-negative integer"},
      {"string sequence", R"({"keys":[],"spiffe_sequence":"1"})",
       "\"spiffe_sequence\" must be a non-negative integer"},
      {"float sequence", R"({"keys":[],"spiffe_sequence":1.5})",
       "\"spiffe_sequence\" must be a non-negative integer"},
      {"negative refresh hint", R"({"keys":[],"spiffe_refresh_hint":-5})",
       "\"spiffe_refresh_hint\" must be a non-negative integer"},
      {"string refresh hint", R"({"keys":[],"spiffe_refresh_hint":"5m"})",
       "\"spiffe_refresh_hint\" must be a non-negative integer"},
      {"huge refresh hint", R"({"keys":[],"spiffe_refresh_hint":18446744073709551615})",
       "\"spiffe_refresh_hint\" is out of range"},
      {"key not object", R"({"keys":[1]})", "keys[0]: must be a JSON object"},
      {"use not string", with(ec, "use", 1), "keys[0]: \"use\" must be a string"},
      {"jwt missing kty", without(ec, "kty"), "keys[0]: missing \"kty\""},
      {"kty not string", with(ec, "kty", true), "keys[0]: \"kty\" must be a string"},
      {"x509 missing x5c", without(x509, "x5c"), "keys[0]: x509-svid key has no \"x5c\""},
      {"x5c not array", with(x509, "x5c", "abc"), "keys[0]: \"x5c\" must be an array"},
      {"x5c empty", with(x509, "x5c", Json::array()),
       "keys[0]: x509-svid key must hold exactly one x5c certificate, got 0"},
      {"x5c two certs", two_certs,
       "keys[0]: x509-svid key must hold exactly one x5c certificate, got 2"},
      {"x5c entry not string", with(x509, "x5c", Json::array({5})),
       "keys[0]: \"x5c\" entries must be strings"},
      {"x5c bad base64", with(x509, "x5c", Json::array({"***"})),
       "keys[0]: x5c certificate is not valid base64"},
      {"x5c not a certificate", with(x509, "x5c", Json::array({crypto::Base64Encode("hello")})),
       "keys[0]: x5c certificate: "},
      {"x509 kty contradicts cert", with(x509, "kty", "RSA"),
       "keys[0]: \"kty\" is \"RSA\" but the x5c certificate holds an EC key"},
      {"x509 params contradict cert", with(x509, "x", other_x),
       "keys[0]: key parameters do not match the x5c certificate's public key"},
      {"jwt missing kid", without(ec, "kid"), "keys[0]: jwt-svid key has no \"kid\""},
      {"jwt empty kid", with(ec, "kid", ""), "keys[0]: jwt-svid key has no \"kid\""},
      {"jwt kid not string", with(ec, "kid", 3), "keys[0]: \"kid\" must be a string"},
      {"jwt missing x", without(ec, "x"), "keys[0]: "},
      {"jwt x not string", with(ec, "x", 12), "keys[0]: \"x\" must be a string"},
      {"jwt bad x", with(ec, "x", "not-a-point"), "keys[0]: "},
      {"jwt bad crv", with(ec, "crv", "P-999"), "keys[0]: "},
      {"jwt rsa missing e",
       Json{{"keys", Json::array({{{"kty", "RSA"}, {"use", "jwt-svid"}, {"kid", "r"}, {"n", rsa_n}}})}}
           .dump(),
       "keys[0]: "},
      {"jwt kid reused for another key",
       Json{{"keys", Json::array({ec, Json(EcJwtKey("ok")), other_ec_key})}}.dump(),
       "keys[2]: JWT authority key ID \"k\" is already used by a different key"},
  };
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<Bundle> b = Bundle::ParseSpiffeJson(Td(), c.json);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(b.status().message(), HasSubstr("bundle: "));
    EXPECT_THAT(b.status().message(), HasSubstr(c.message));
  }
}

TEST_F(BundleTest, ErrorNamesTheIndexOfTheBadKey) {
  Json bad = EcJwtKey("k2");
  bad.erase("kid");
  Json doc = {{"keys", Json::array({X509Key(ec_root_.cert), EcJwtKey("k1"), bad})}};
  absl::Status s = ParseError(doc);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("keys[2]: jwt-svid key has no \"kid\""));
}

TEST_F(BundleTest, DeeplyNestedJsonIsRefusedWithoutCrashing) {
  std::string deep(100000, '[');
  absl::StatusOr<Bundle> b = Bundle::ParseSpiffeJson(Td(), deep);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("malformed JSON"));
  std::string nested = "{\"keys\":[],\"x\":" + std::string(50000, '[') + std::string(50000, ']') + "}";
  EXPECT_TRUE(Bundle::ParseSpiffeJson(Td(), nested).ok());
}

TEST_F(BundleTest, InvalidUtf8IsRefused) {
  absl::StatusOr<Bundle> b = Bundle::ParseSpiffeJson(Td(), "{\"keys\":[],\"x\":\"\xff\"}");
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("malformed JSON"));
}

TEST_F(BundleTest, X509PemRoundTrips) {
  Bundle b(Td());
  b.AddX509Authority(ec_root_.cert);
  b.AddX509Authority(rsa_root_.cert);
  std::string pem = b.X509AuthoritiesPem();
  EXPECT_EQ(pem.find("-----BEGIN CERTIFICATE-----"), 0u);
  absl::StatusOr<Bundle> parsed = Bundle::ParseX509Pem(Td(), pem);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, b);
  EXPECT_EQ(parsed->x509_authorities(), b.x509_authorities());
}

TEST_F(BundleTest, X509DerRoundTrips) {
  Bundle b(Td());
  b.AddX509Authority(ec_root_.cert);
  b.AddX509Authority(rsa_root_.cert);
  std::string der = b.X509AuthoritiesDer();
  EXPECT_EQ(der, ec_root_.cert.der() + rsa_root_.cert.der());
  absl::StatusOr<Bundle> parsed = Bundle::ParseX509Der(Td(), der);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, b);
}

TEST_F(BundleTest, EmptyX509InputGivesAnEmptyBundle) {
  absl::StatusOr<Bundle> pem = Bundle::ParseX509Pem(Td(), " \n");
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_TRUE(pem->x509_authorities().empty());
  absl::StatusOr<Bundle> der = Bundle::ParseX509Der(Td(), "");
  ASSERT_TRUE(der.ok()) << der.status();
  EXPECT_TRUE(der->x509_authorities().empty());
}

TEST_F(BundleTest, MalformedX509InputIsRefused) {
  absl::StatusOr<Bundle> pem = Bundle::ParseX509Pem(Td(), "not a pem");
  ASSERT_FALSE(pem.ok());
  EXPECT_EQ(pem.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pem.status().message(), HasSubstr("bundle: "));
  absl::StatusOr<Bundle> der = Bundle::ParseX509Der(Td(), "\x30\x03\x01\x01");
  ASSERT_FALSE(der.ok());
  EXPECT_EQ(der.status().code(), absl::StatusCode::kInvalidArgument);
  std::string truncated = ec_root_.cert.der().substr(0, ec_root_.cert.der().size() - 1);
  EXPECT_FALSE(Bundle::ParseX509Der(Td(), truncated).ok());
}

TEST_F(BundleTest, JwtJwksHoldsOnlyJwtAuthorities) {
  Json doc = Json::parse(FullBundle().ToJwtJwksJson());
  EXPECT_FALSE(doc.contains("spiffe_sequence"));
  EXPECT_FALSE(doc.contains("spiffe_refresh_hint"));
  ASSERT_EQ(doc["keys"].size(), 2u);
  EXPECT_EQ(doc["keys"][0]["kid"], "ec-kid");
  EXPECT_EQ(doc["keys"][1]["kid"], "rsa-kid");
  absl::StatusOr<Bundle> parsed = Bundle::ParseSpiffeJson(Td(), doc.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->x509_authorities().empty());
  EXPECT_EQ(parsed->jwt_authorities().size(), 2u);
}

TEST_F(BundleTest, AddJwtAuthorityRefusesEmptyKidAndKidConflicts) {
  Bundle b(Td());
  absl::Status empty = b.AddJwtAuthority({"", TestKey(KeyType::kEcP256).public_key()});
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.message(), HasSubstr("key ID cannot be empty"));
  ASSERT_TRUE(b.AddJwtAuthority({"k", TestKey(KeyType::kEcP256).public_key()}).ok());
  EXPECT_TRUE(b.AddJwtAuthority({"k", TestKey(KeyType::kEcP256).public_key()}).ok());
  absl::Status conflict = b.AddJwtAuthority({"k", TestKey(KeyType::kEcP384).public_key()});
  EXPECT_EQ(conflict.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(conflict.message(), HasSubstr("already used by a different key"));
  EXPECT_EQ(b.jwt_authorities().size(), 1u);
  EXPECT_EQ(b.FindJwtAuthority("k")->public_key, TestKey(KeyType::kEcP256).public_key());
}

TEST_F(BundleTest, AddX509AuthorityIgnoresDuplicates) {
  Bundle b(Td());
  b.AddX509Authority(ec_root_.cert);
  b.AddX509Authority(ec_root_.cert);
  EXPECT_EQ(b.x509_authorities().size(), 1u);
}

TEST_F(BundleTest, EqualityIgnoresOrderButNotContent) {
  Bundle a = FullBundle();
  Bundle reordered(Td());
  reordered.AddX509Authority(rsa_root_.cert);
  reordered.AddX509Authority(ec_root_.cert);
  ASSERT_TRUE(reordered.AddJwtAuthority({"rsa-kid", TestKey(KeyType::kRsa2048, 1).public_key()}).ok());
  ASSERT_TRUE(reordered.AddJwtAuthority({"ec-kid", TestKey(KeyType::kEcP384).public_key()}).ok());
  reordered.set_sequence_number(42);
  reordered.set_refresh_hint(absl::Minutes(5));
  EXPECT_EQ(a, reordered);

  Bundle other_seq = FullBundle();
  other_seq.set_sequence_number(43);
  EXPECT_NE(a, other_seq);
  Bundle other_hint = FullBundle();
  other_hint.set_refresh_hint(absl::Minutes(6));
  EXPECT_NE(a, other_hint);
  EXPECT_NE(Bundle(Td()), Bundle(Td("example.com")));
  Bundle fewer(Td());
  fewer.AddX509Authority(ec_root_.cert);
  Bundle other_cert(Td());
  other_cert.AddX509Authority(rsa_root_.cert);
  EXPECT_NE(fewer, other_cert);
  Bundle jwt_a(Td()), jwt_b(Td());
  ASSERT_TRUE(jwt_a.AddJwtAuthority({"k", TestKey(KeyType::kEcP256).public_key()}).ok());
  ASSERT_TRUE(jwt_b.AddJwtAuthority({"k", TestKey(KeyType::kEcP384).public_key()}).ok());
  EXPECT_NE(jwt_a, jwt_b);
  Bundle jwt_c(Td());
  ASSERT_TRUE(jwt_c.AddJwtAuthority({"other", TestKey(KeyType::kEcP256).public_key()}).ok());
  EXPECT_NE(jwt_a, jwt_c);
}

TEST_F(BundleTest, RefreshHintIsKeptInWholeSeconds) {
  Bundle b(Td());
  b.set_refresh_hint(absl::Milliseconds(90500));
  EXPECT_EQ(b.refresh_hint(), absl::Seconds(90));
  EXPECT_EQ(Json::parse(b.ToSpiffeJson())["spiffe_refresh_hint"], 90);
}

TEST_F(BundleTest, BundleSetFindsBundlesByTrustDomain) {
  BundleSet set;
  set.Add(FullBundle());
  absl::StatusOr<Bundle> found = set.GetBundleForTrustDomain(Td());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, FullBundle());
  absl::StatusOr<Bundle> missing = set.GetBundleForTrustDomain(Td("example.com"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("\"example.com\""));
  // Adding a bundle of the same trust domain replaces it.
  set.Add(Bundle(Td()));
  EXPECT_TRUE(set.GetBundleForTrustDomain(Td())->x509_authorities().empty());
  EXPECT_EQ(set.bundles().size(), 1u);
}

}  // namespace
}  // namespace sigil::spiffe
