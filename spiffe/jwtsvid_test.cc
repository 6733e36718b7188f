#include "spiffe/jwtsvid.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spiffe/crypto/encoding.h"
#include "spiffe/spiffe_test_util.h"

namespace sigil::spiffe {
namespace {

using ::sigil::crypto::KeyType;
using ::sigil::crypto::PrivateKey;
using ::sigil::spiffe::testing::P521Key;
using ::sigil::spiffe::testing::TestKey;
using ::sigil::spiffe::testing::TestNow;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kSubject[] = "spiffe://example.org/workload";
constexpr char kAudience[] = "spiffe://example.org/server";

TrustDomain Td(const char* name) { return TrustDomain::FromString(name).value(); }

std::vector<std::string> Split(const std::string& token) { return absl::StrSplit(token, '.'); }

Json DecodePart(const std::string& part) {
  return Json::parse(crypto::Base64UrlDecode(part).value());
}

// Builds a compact JWS over arbitrary header and claims, signed the JOSE
// way, so that tests can produce well-signed tokens that break other rules.
std::string SignRaw(const Json& header, const Json& payload, const PrivateKey& key,
                    crypto::SignatureScheme scheme) {
  std::string input = absl::StrCat(crypto::Base64UrlEncode(header.dump()), ".",
                                   crypto::Base64UrlEncode(payload.dump()));
  std::string sig = key.Sign(scheme, input).value();
  if (key.algorithm() == crypto::KeyAlgorithm::kEc) {
    sig = crypto::EcdsaDerToRaw(sig, key.public_key().size_bytes()).value();
  }
  return absl::StrCat(input, ".", crypto::Base64UrlEncode(sig));
}

std::string Unsigned(const Json& header, const Json& payload, const std::string& signature) {
  return absl::StrCat(crypto::Base64UrlEncode(header.dump()), ".",
                      crypto::Base64UrlEncode(payload.dump()), ".", signature);
}

class JwtSvidTest : public ::testing::Test {
 protected:
  JwtSvidTest() : ec_key_(TestKey(KeyType::kEcP256, 20)) {
    Bundle b(Td("example.org"));
    EXPECT_TRUE(b.AddJwtAuthority({"ec", ec_key_.public_key()}).ok());
    EXPECT_TRUE(b.AddJwtAuthority({"p384", TestKey(KeyType::kEcP384, 20).public_key()}).ok());
    EXPECT_TRUE(b.AddJwtAuthority({"p521", P521Key().public_key()}).ok());
    EXPECT_TRUE(b.AddJwtAuthority({"rsa", TestKey(KeyType::kRsa2048, 20).public_key()}).ok());
    bundles_.Add(b);
    Bundle other(Td("other.org"));
    EXPECT_TRUE(other.AddJwtAuthority({"other", TestKey(KeyType::kEcP256, 21).public_key()}).ok());
    bundles_.Add(other);
  }

  JwtSvidClaims Claims() const {
    return JwtSvidClaims{SpiffeId::FromString(kSubject).value(), {kAudience},
                         TestNow() + absl::Minutes(5), TestNow(), ""};
  }

  Json Header(const std::string& alg = "ES256", const std::string& kid = "ec") const {
    return Json{{"alg", alg}, {"kid", kid}, {"typ", "JWT"}};
  }

  Json Payload() const {
    return Json{{"sub", kSubject},
                {"aud", kAudience},
                {"exp", absl::ToUnixSeconds(TestNow() + absl::Minutes(5))},
                {"iat", absl::ToUnixSeconds(TestNow())}};
  }

  std::string Token() const { return SignJwtSvid(Claims(), ec_key_, "ec").value(); }

  absl::StatusOr<JwtSvid> Validate(const std::string& token, absl::Time now = TestNow(),
                                   const std::string& audience = kAudience) const {
    return ParseAndValidate(token, bundles_, audience, now);
  }

  void ExpectRejected(const std::string& token, const std::string& message) const {
    absl::StatusOr<JwtSvid> svid = Validate(token);
    ASSERT_FALSE(svid.ok()) << "accepted: " << token;
    EXPECT_EQ(svid.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(svid.status().message(), HasSubstr("jwtsvid: "));
    EXPECT_THAT(svid.status().message(), HasSubstr(message));
  }

  PrivateKey ec_key_;
  BundleSet bundles_;
};

// ---- Signing and validating with every algorithm ----

TEST_F(JwtSvidTest, SignsAndValidatesWithEveryAlgorithm) {
  // RSA-4096 is slow to generate, so only this test uses it.
  Bundle b = bundles_.GetBundleForTrustDomain(Td("example.org")).value();
  ASSERT_TRUE(b.AddJwtAuthority({"rsa4096", TestKey(KeyType::kRsa4096, 20).public_key()}).ok());
  bundles_.Add(b);
  struct Case {
    std::string alg;
    const PrivateKey* key;
    std::string kid;
  };
  const std::vector<Case> cases = {
      {"ES256", &ec_key_, "ec"},
      {"ES384", &TestKey(KeyType::kEcP384, 20), "p384"},
      {"ES512", &P521Key(), "p521"},
      {"RS256", &TestKey(KeyType::kRsa2048, 20), "rsa"},
      {"RS384", &TestKey(KeyType::kRsa2048, 20), "rsa"},
      {"RS512", &TestKey(KeyType::kRsa2048, 20), "rsa"},
      {"PS256", &TestKey(KeyType::kRsa2048, 20), "rsa"},
      {"PS384", &TestKey(KeyType::kRsa2048, 20), "rsa"},
      {"PS512", &TestKey(KeyType::kRsa2048, 20), "rsa"},
      {"RS256", &TestKey(KeyType::kRsa4096, 20), "rsa4096"},
      {"PS512", &TestKey(KeyType::kRsa4096, 20), "rsa4096"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.alg + " " + c.kid);
    absl::StatusOr<std::string> token = SignJwtSvid(Claims(), *c.key, c.kid, c.alg);
    ASSERT_TRUE(token.ok()) << token.status();
    Json header = DecodePart(Split(*token)[0]);
    EXPECT_EQ(header, (Json{{"alg", c.alg}, {"kid", c.kid}, {"typ", "JWT"}}));
    if (c.alg[0] == 'E') {
      // JOSE ECDSA signatures are raw r||s of twice the field size.
      std::string sig = crypto::Base64UrlDecode(Split(*token)[2]).value();
      EXPECT_EQ(sig.size(), 2u * static_cast<size_t>(c.key->public_key().size_bytes()));
    }
    absl::StatusOr<JwtSvid> svid = Validate(*token);
    ASSERT_TRUE(svid.ok()) << svid.status();
    EXPECT_EQ(svid->id.ToString(), kSubject);
    EXPECT_EQ(svid->alg, c.alg);
    EXPECT_EQ(svid->key_id, c.kid);
    EXPECT_EQ(svid->token, *token);
    EXPECT_EQ(svid->expiry, TestNow() + absl::Minutes(5));
    EXPECT_EQ(svid->audience, std::vector<std::string>{kAudience});
  }
}

TEST_F(JwtSvidTest, DefaultAlgorithmFollowsTheKey) {
  EXPECT_EQ(JoseAlgForKey(ec_key_).value(), "ES256");
  EXPECT_EQ(JoseAlgForKey(TestKey(KeyType::kEcP384, 20)).value(), "ES384");
  EXPECT_EQ(JoseAlgForKey(P521Key()).value(), "ES512");
  EXPECT_EQ(JoseAlgForKey(TestKey(KeyType::kRsa2048, 20)).value(), "RS256");
  absl::StatusOr<std::string> token = SignJwtSvid(Claims(), TestKey(KeyType::kEcP384, 20), "p384");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(DecodePart(Split(*token)[0])["alg"], "ES384");
  EXPECT_TRUE(Validate(*token).ok());
}

TEST_F(JwtSvidTest, SchemeForJoseAlgMapsExactlyTheAllowedNames) {
  EXPECT_EQ(SchemeForJoseAlg("ES256").value(), crypto::SignatureScheme::kEcdsaSha256);
  EXPECT_EQ(SchemeForJoseAlg("ES512").value(), crypto::SignatureScheme::kEcdsaSha512);
  EXPECT_EQ(SchemeForJoseAlg("RS384").value(), crypto::SignatureScheme::kRsaPkcs1Sha384);
  EXPECT_EQ(SchemeForJoseAlg("PS256").value(), crypto::SignatureScheme::kRsaPssSha256);
  for (const char* alg : {"none", "None", "HS256", "HS384", "HS512", "EdDSA", "es256", "RS1",
                          "ES256K", "", "RSA-OAEP"}) {
    SCOPED_TRACE(alg);
    absl::StatusOr<crypto::SignatureScheme> s = SchemeForJoseAlg(alg);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.status().message(), HasSubstr("unsupported alg"));
  }
}

TEST_F(JwtSvidTest, SignedClaimsHaveTheStandardShape) {
  JwtSvidClaims claims = Claims();
  claims.issuer = "https://oidc.example.org";
  Json payload = DecodePart(Split(SignJwtSvid(claims, ec_key_, "ec").value())[1]);
  EXPECT_EQ(payload["sub"], kSubject);
  EXPECT_EQ(payload["aud"], kAudience);  // one audience: a string
  EXPECT_EQ(payload["exp"], absl::ToUnixSeconds(TestNow()) + 300);
  EXPECT_EQ(payload["iat"], absl::ToUnixSeconds(TestNow()));
  EXPECT_EQ(payload["iss"], "https://oidc.example.org");

  claims.audience = {"a", "b"};
  claims.issuer = "";
  payload = DecodePart(Split(SignJwtSvid(claims, ec_key_, "ec").value())[1]);
  EXPECT_EQ(payload["aud"], Json::array({"a", "b"}));
  EXPECT_FALSE(payload.contains("iss"));
}

TEST_F(JwtSvidTest, ValidatedSvidCarriesClaimsJson) {
  JwtSvidClaims claims = Claims();
  claims.issuer = "issuer";
  absl::StatusOr<JwtSvid> svid = Validate(SignJwtSvid(claims, ec_key_, "ec").value());
  ASSERT_TRUE(svid.ok()) << svid.status();
  Json parsed = Json::parse(svid->claims_json);
  EXPECT_EQ(parsed["sub"], kSubject);
  EXPECT_EQ(parsed["iss"], "issuer");
  EXPECT_EQ(parsed["aud"], kAudience);
}

TEST_F(JwtSvidTest, SigningRefusesBadArguments) {
  struct Case {
    std::string name;
    absl::StatusOr<std::string> result;
    std::string message;
  };
  JwtSvidClaims no_aud = Claims();
  no_aud.audience.clear();
  JwtSvidClaims empty_aud = Claims();
  empty_aud.audience = {"a", ""};
  JwtSvidClaims infinite = Claims();
  infinite.expiry = absl::InfiniteFuture();
  const std::vector<Case> cases = {
      {"empty kid", SignJwtSvid(Claims(), ec_key_, ""), "key ID is required"},
      {"no audience", SignJwtSvid(no_aud, ec_key_, "ec"), "needs at least one audience"},
      {"empty audience", SignJwtSvid(empty_aud, ec_key_, "ec"), "audience values must not be empty"},
      {"infinite expiry", SignJwtSvid(infinite, ec_key_, "ec"), "expiry must be a finite time"},
      {"alg none", SignJwtSvid(Claims(), ec_key_, "ec", "none"), "unsupported alg \"none\""},
      {"HS256", SignJwtSvid(Claims(), ec_key_, "ec", "HS256"), "unsupported alg"},
      {"ES256 with P-384", SignJwtSvid(Claims(), TestKey(KeyType::kEcP384, 20), "p384", "ES256"),
       "alg \"ES256\" cannot be used with an EC P-384 key"},
      {"ES512 with P-256", SignJwtSvid(Claims(), ec_key_, "ec", "ES512"),
       "alg \"ES512\" cannot be used with an EC P-256 key"},
      {"RS256 with EC", SignJwtSvid(Claims(), ec_key_, "ec", "RS256"),
       "alg \"RS256\" cannot be used with an EC P-256 key"},
      {"ES256 with RSA", SignJwtSvid(Claims(), TestKey(KeyType::kRsa2048, 20), "rsa", "ES256"),
       "alg \"ES256\" cannot be used with an RSA-2048 key"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_FALSE(c.result.ok());
    EXPECT_EQ(c.result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(c.result.status().message(), HasSubstr(c.message));
  }
}

// ---- Algorithm rules: checked before anything else ----

TEST_F(JwtSvidTest, AlgNoneWithGarbageSignatureGetsTheAlgError) {
  Json header = {{"alg", "none"}};  // no kid, no typ: those would fail later
  ExpectRejected(Unsigned(header, Payload(), "!!garbage!!"), "unsupported alg \"none\"");
  ExpectRejected(Unsigned(header, Payload(), ""), "unsupported alg \"none\"");
  // Even a payload that is not base64 does not get looked at.
  ExpectRejected(crypto::Base64UrlEncode(header.dump()) + ".%%%.", "unsupported alg \"none\"");
}

TEST_F(JwtSvidTest, DisallowedAlgorithmsAreRejectedBeforeSignatureAndClaims) {
  for (const char* alg : {"none", "HS256", "HS384", "HS512", "EdDSA", "ES256K", "es256"}) {
    SCOPED_TRACE(alg);
    Json header = Header(alg, "ec");
    Json expired = Payload();
    expired["exp"] = 0;
    expired.erase("sub");
    ExpectRejected(Unsigned(header, expired, "AAAA"), "unsupported alg");
    // Also through ParseInsecure, which checks no signature at all.
    absl::StatusOr<JwtSvid> insecure = ParseInsecure(Unsigned(header, Payload(), "AAAA"));
    EXPECT_THAT(insecure.status().message(), HasSubstr("unsupported alg"));
  }
}

TEST_F(JwtSvidTest, HmacTokenKeyedWithThePublicKeyIsRejected) {
  // The classic confusion attack: HS256 "signed" with the public key bytes.
  std::string token = Unsigned(Header("HS256", "ec"), Payload(),
                               crypto::Base64UrlEncode(crypto::Sha256(ec_key_.public_key().spki_der())));
  ExpectRejected(token, "unsupported alg \"HS256\"");
}

TEST_F(JwtSvidTest, MissingOrNonStringAlgIsRejected) {
  Json no_alg = {{"kid", "ec"}};
  ExpectRejected(Unsigned(no_alg, Payload(), "AAAA"), "header has no \"alg\"");
  Json numeric = {{"alg", 256}, {"kid", "ec"}};
  ExpectRejected(Unsigned(numeric, Payload(), "AAAA"), "header \"alg\" must be a string");
}

TEST_F(JwtSvidTest, AlgMustFitTheAuthorityKey) {
  // Correctly signed with P-256, but the bundle's "p384" authority is P-384.
  ExpectRejected(SignRaw(Header("ES256", "p384"), Payload(), ec_key_,
                         crypto::SignatureScheme::kEcdsaSha256),
                 "alg \"ES256\" cannot be used with an EC P-384 key");
  ExpectRejected(SignRaw(Header("RS256", "ec"), Payload(), TestKey(KeyType::kRsa2048, 20),
                         crypto::SignatureScheme::kRsaPkcs1Sha256),
                 "alg \"RS256\" cannot be used with an EC P-256 key");
  ExpectRejected(SignRaw(Header("ES256", "rsa"), Payload(), ec_key_,
                         crypto::SignatureScheme::kEcdsaSha256),
                 "alg \"ES256\" cannot be used with an RSA-2048 key");
}

TEST_F(JwtSvidTest, PssAndPkcs1AreNotInterchangeable) {
  std::string token = SignJwtSvid(Claims(), TestKey(KeyType::kRsa2048, 20), "rsa", "PS256").value();
  std::vector<std::string> parts = Split(token);
  Json header = DecodePart(parts[0]);
  header["alg"] = "RS256";
  ExpectRejected(absl::StrCat(crypto::Base64UrlEncode(header.dump()), ".", parts[1], ".", parts[2]),
                 "signature verification failed");
}

// ---- Serialization ----

TEST_F(JwtSvidTest, OnlyCompactSerializationIsAccepted) {
  std::vector<std::string> parts = Split(Token());
  Json general = {{"payload", parts[1]},
                  {"signatures", Json::array({{{"protected", parts[0]}, {"signature", parts[2]}}})}};
  ExpectRejected(general.dump(), "JWS JSON serialization is not supported");
  Json flattened = {{"payload", parts[1]}, {"protected", parts[0]}, {"signature", parts[2]}};
  ExpectRejected(flattened.dump(), "JWS JSON serialization is not supported");
  ExpectRejected("  " + flattened.dump(), "JWS JSON serialization is not supported");
  ExpectRejected("a.b.c.d.e", "JWE (encrypted) tokens are not supported");
  ExpectRejected(parts[0] + "." + parts[1], "three dot-separated parts, found 2");
  ExpectRejected(Token() + ".x", "three dot-separated parts, found 4");
  ExpectRejected("", "token is empty");
  ExpectRejected("garbage", "three dot-separated parts, found 1");
}

TEST_F(JwtSvidTest, MalformedSegmentsAreRejected) {
  std::vector<std::string> parts = Split(Token());
  ExpectRejected("%%%." + parts[1] + "." + parts[2], "header is not valid base64url");
  ExpectRejected(parts[0] + "=." + parts[1] + "." + parts[2], "header is not valid base64url");
  ExpectRejected(crypto::Base64UrlEncode("{not json") + "." + parts[1] + "." + parts[2],
                 "header is not valid JSON");
  ExpectRejected(crypto::Base64UrlEncode("[1]") + "." + parts[1] + "." + parts[2],
                 "header must be a JSON object");
  ExpectRejected(parts[0] + ".%%%." + parts[2], "payload is not valid base64url");
  ExpectRejected(parts[0] + "." + crypto::Base64UrlEncode("nope") + "." + parts[2],
                 "payload is not valid JSON");
  ExpectRejected(parts[0] + "." + crypto::Base64UrlEncode("\"s\"") + "." + parts[2],
                 "payload must be a JSON object");
  ExpectRejected(parts[0] + "." + parts[1] + ".%%%", "signature is not valid base64url");
}

TEST_F(JwtSvidTest, DuplicateMembersAreRejected) {
  std::string header = R"({"alg":"ES256","kid":"ec","alg":"none"})";
  std::string payload = Payload().dump();
  std::string input = crypto::Base64UrlEncode(header) + "." + crypto::Base64UrlEncode(payload);
  std::string sig = crypto::EcdsaDerToRaw(ec_key_.Sign(crypto::SignatureScheme::kEcdsaSha256, input).value(), 32).value();
  ExpectRejected(input + "." + crypto::Base64UrlEncode(sig), "header has a duplicate member \"alg\"");

  std::string dup_sub = R"({"sub":"spiffe://example.org/a","sub":"spiffe://example.org/b","aud":"x","exp":1})";
  ExpectRejected(crypto::Base64UrlEncode(Header().dump()) + "." +
                     crypto::Base64UrlEncode(dup_sub) + ".AAAA",
                 "payload has a duplicate member \"sub\"");
  // The same name in different objects is not a duplicate.
  Json nested = Payload();
  nested["a"] = {{"sub", 1}};
  nested["b"] = {{"sub", 2}};
  EXPECT_TRUE(Validate(SignRaw(Header(), nested, ec_key_, crypto::SignatureScheme::kEcdsaSha256)).ok());
}

// ---- Header rules ----

TEST_F(JwtSvidTest, KidIsRequired) {
  Json no_kid = {{"alg", "ES256"}, {"typ", "JWT"}};
  ExpectRejected(SignRaw(no_kid, Payload(), ec_key_, crypto::SignatureScheme::kEcdsaSha256),
                 "header has no \"kid\"");
  ExpectRejected(SignRaw(Header("ES256", ""), Payload(), ec_key_,
                         crypto::SignatureScheme::kEcdsaSha256),
                 "header \"kid\" is empty");
  Json numeric = {{"alg", "ES256"}, {"kid", 1}};
  ExpectRejected(SignRaw(numeric, Payload(), ec_key_, crypto::SignatureScheme::kEcdsaSha256),
                 "header \"kid\" must be a string");
}

TEST_F(JwtSvidTest, TypMayBeAbsentJwtOrJose) {
  for (Json header : {Json{{"alg", "ES256"}, {"kid", "ec"}},
                      Json{{"alg", "ES256"}, {"kid", "ec"}, {"typ", "JWT"}},
                      Json{{"alg", "ES256"}, {"kid", "ec"}, {"typ", "JOSE"}}}) {
    SCOPED_TRACE(header.dump());
    absl::StatusOr<JwtSvid> svid =
        Validate(SignRaw(header, Payload(), ec_key_, crypto::SignatureScheme::kEcdsaSha256));
    EXPECT_TRUE(svid.ok()) << svid.status();
  }
  for (Json typ : {Json("at+jwt"), Json("jwt"), Json(""), Json(1)}) {
    SCOPED_TRACE(typ.dump());
    Json header = Header();
    header["typ"] = typ;
    ExpectRejected(SignRaw(header, Payload(), ec_key_, crypto::SignatureScheme::kEcdsaSha256),
                   "header \"typ\" must be \"JWT\" or \"JOSE\"");
  }
}

TEST_F(JwtSvidTest, CritHeaderIsRejected) {
  Json header = Header();
  header["crit"] = {"exp"};
  ExpectRejected(SignRaw(header, Payload(), ec_key_, crypto::SignatureScheme::kEcdsaSha256),
                 "header \"crit\" is not supported");
}

// ---- Claims rules ----

TEST_F(JwtSvidTest, ClaimViolationsAreRejected) {
  struct Case {
    std::string name;
    std::function<void(Json&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no sub", [](Json& p) { p.erase("sub"); }, "token has no \"sub\" claim"},
      {"sub not string", [](Json& p) { p["sub"] = 5; }, "\"sub\" claim must be a string"},
      {"sub not SPIFFE", [](Json& p) { p["sub"] = "https://example.org/w"; },
       "\"sub\" claim is not a valid SPIFFE ID"},
      {"sub uppercase td", [](Json& p) { p["sub"] = "spiffe://EXAMPLE.org/w"; },
       "trust domain must be lowercase"},
      {"sub trailing slash", [](Json& p) { p["sub"] = "spiffe://example.org/w/"; },
       "path must not have a trailing slash"},
      {"no aud", [](Json& p) { p.erase("aud"); }, "token has no \"aud\" claim"},
      {"aud empty array", [](Json& p) { p["aud"] = Json::array(); }, "\"aud\" claim is empty"},
      {"aud number", [](Json& p) { p["aud"] = 1; },
       "\"aud\" claim must be a string or an array of strings"},
      {"aud null", [](Json& p) { p["aud"] = nullptr; },
       "\"aud\" claim must be a string or an array of strings"},
      {"aud array of numbers", [](Json& p) { p["aud"] = {kAudience, 1}; },
       "\"aud\" claim array must hold only strings"},
      {"no exp", [](Json& p) { p.erase("exp"); }, "token has no \"exp\" claim"},
      {"exp string", [](Json& p) { p["exp"] = "tomorrow"; }, "\"exp\" claim must be a number"},
      {"nbf string", [](Json& p) { p["nbf"] = "now"; }, "\"nbf\" claim must be a number"},
      {"iat bool", [](Json& p) { p["iat"] = true; }, "\"iat\" claim must be a number"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Json payload = Payload();
    c.mutate(payload);
    std::string token = SignRaw(Header(), payload, ec_key_, crypto::SignatureScheme::kEcdsaSha256);
    ExpectRejected(token, c.message);
    absl::StatusOr<JwtSvid> insecure = ParseInsecure(token);
    EXPECT_THAT(insecure.status().message(), HasSubstr(c.message));
  }
}

TEST_F(JwtSvidTest, AudienceMustContainTheExpectedValue) {
  JwtSvidClaims claims = Claims();
  claims.audience = {"first", kAudience, "third"};
  std::string token = SignJwtSvid(claims, ec_key_, "ec").value();
  absl::StatusOr<JwtSvid> svid = Validate(token);
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->audience, (std::vector<std::string>{"first", kAudience, "third"}));
  absl::StatusOr<JwtSvid> wrong = Validate(token, TestNow(), "spiffe://example.org/other");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(),
              HasSubstr("expected audience \"spiffe://example.org/other\" is not in the token's"));
  // Audience matching is exact.
  EXPECT_FALSE(Validate(token, TestNow(), "FIRST").ok());
  EXPECT_FALSE(Validate(token, TestNow(), "firs").ok());
  absl::StatusOr<JwtSvid> empty = Validate(token, TestNow(), "");
  EXPECT_THAT(empty.status().message(), HasSubstr("an expected audience is required"));
}

TEST_F(JwtSvidTest, ExpiryIsEnforcedWithTheDocumentedLeeway) {
  std::string token = Token();
  absl::Time exp = TestNow() + absl::Minutes(5);
  EXPECT_TRUE(Validate(token, exp - absl::Seconds(1)).ok());
  EXPECT_TRUE(Validate(token, exp + kJwtLeeway - absl::Seconds(1)).ok());
  absl::StatusOr<JwtSvid> expired = Validate(token, exp + kJwtLeeway);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(expired.status().message(), HasSubstr("token has expired"));
  EXPECT_FALSE(Validate(token, exp + absl::Hours(24)).ok());
  // ParseInsecure does not look at time.
  absl::StatusOr<JwtSvid> insecure = ParseInsecure(token);
  ASSERT_TRUE(insecure.ok()) << insecure.status();
  EXPECT_EQ(insecure->expiry, exp);
}

TEST_F(JwtSvidTest, FractionalAndHugeExpiryAreNumericDates) {
  Json payload = Payload();
  payload["exp"] = absl::ToUnixSeconds(TestNow()) + 10.5;
  std::string token = SignRaw(Header(), payload, ec_key_, crypto::SignatureScheme::kEcdsaSha256);
  absl::StatusOr<JwtSvid> svid = Validate(token);
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->expiry, TestNow() + absl::Milliseconds(10500));
  payload["exp"] = 18446744073709551615ull;
  EXPECT_TRUE(Validate(SignRaw(Header(), payload, ec_key_, crypto::SignatureScheme::kEcdsaSha256)).ok());
  payload["exp"] = -5;
  ExpectRejected(SignRaw(Header(), payload, ec_key_, crypto::SignatureScheme::kEcdsaSha256),
                 "token has expired");
}

TEST_F(JwtSvidTest, NotBeforeAndIssuedAtInTheFutureAreRejected) {
  Json payload = Payload();
  payload["nbf"] = absl::ToUnixSeconds(TestNow() + absl::Minutes(2));
  ExpectRejected(SignRaw(Header(), payload, ec_key_, crypto::SignatureScheme::kEcdsaSha256),
                 "token is not valid yet");
  payload["nbf"] = absl::ToUnixSeconds(TestNow() + kJwtLeeway - absl::Seconds(1));
  EXPECT_TRUE(Validate(SignRaw(Header(), payload, ec_key_, crypto::SignatureScheme::kEcdsaSha256)).ok());
  payload = Payload();
  payload["iat"] = absl::ToUnixSeconds(TestNow() + absl::Minutes(2));
  ExpectRejected(SignRaw(Header(), payload, ec_key_, crypto::SignatureScheme::kEcdsaSha256),
                 "token was issued in the future");
}

// ---- Tampering ----

TEST_F(JwtSvidTest, TamperedHeaderFailsVerification) {
  std::vector<std::string> parts = Split(Token());
  Json header = DecodePart(parts[0]);
  header["typ"] = "JOSE";
  ExpectRejected(absl::StrCat(crypto::Base64UrlEncode(header.dump()), ".", parts[1], ".", parts[2]),
                 "signature verification failed");
  // Pointing kid at another key of the same curve fails too.
  Bundle b(Td("example.org"));
  ASSERT_TRUE(b.AddJwtAuthority({"ec", TestKey(KeyType::kEcP256, 22).public_key()}).ok());
  BundleSet other_keys;
  other_keys.Add(b);
  absl::StatusOr<JwtSvid> svid = ParseAndValidate(Token(), other_keys, kAudience, TestNow());
  EXPECT_THAT(svid.status().message(), HasSubstr("signature verification failed"));
}

TEST_F(JwtSvidTest, TamperedPayloadFailsVerification) {
  for (const char* alg : {"ES256", "RS256", "PS256"}) {
    SCOPED_TRACE(alg);
    const PrivateKey& key = alg[0] == 'E' ? ec_key_ : TestKey(KeyType::kRsa2048, 20);
    std::string kid = alg[0] == 'E' ? "ec" : "rsa";
    std::vector<std::string> parts = Split(SignJwtSvid(Claims(), key, kid, alg).value());
    Json payload = DecodePart(parts[1]);
    payload["sub"] = "spiffe://example.org/admin";
    ExpectRejected(
        absl::StrCat(parts[0], ".", crypto::Base64UrlEncode(payload.dump()), ".", parts[2]),
        "signature verification failed");
    payload = DecodePart(parts[1]);
    payload["exp"] = payload["exp"].get<int64_t>() + 3600;
    ExpectRejected(
        absl::StrCat(parts[0], ".", crypto::Base64UrlEncode(payload.dump()), ".", parts[2]),
        "signature verification failed");
  }
}

TEST_F(JwtSvidTest, TamperedSignatureFailsVerification) {
  for (const char* alg : {"ES256", "ES384", "ES512", "RS256", "PS384"}) {
    SCOPED_TRACE(alg);
    const PrivateKey& key = std::string(alg) == "ES256"   ? ec_key_
                            : std::string(alg) == "ES384" ? TestKey(KeyType::kEcP384, 20)
                            : std::string(alg) == "ES512" ? P521Key()
                                                          : TestKey(KeyType::kRsa2048, 20);
    std::string kid = std::string(alg) == "ES256"   ? "ec"
                      : std::string(alg) == "ES384" ? "p384"
                      : std::string(alg) == "ES512" ? "p521"
                                                    : "rsa";
    std::vector<std::string> parts = Split(SignJwtSvid(Claims(), key, kid, alg).value());
    std::string sig = crypto::Base64UrlDecode(parts[2]).value();
    for (size_t pos : {size_t{0}, sig.size() / 2, sig.size() - 1}) {
      std::string flipped = sig;
      flipped[pos] ^= 0x01;
      // "signature verification failed", or "malformed signature" when the
      // flip pushes r or s out of range.
      ExpectRejected(absl::StrCat(parts[0], ".", parts[1], ".", crypto::Base64UrlEncode(flipped)),
                     "signature");
    }
    ExpectRejected(absl::StrCat(parts[0], ".", parts[1], "."), "signature");
  }
}

TEST_F(JwtSvidTest, WrongSizeEcdsaSignatureIsRejected) {
  std::vector<std::string> parts = Split(Token());
  std::string sig = crypto::Base64UrlDecode(parts[2]).value();
  ASSERT_EQ(sig.size(), 64u);
  ExpectRejected(absl::StrCat(parts[0], ".", parts[1], ".", crypto::Base64UrlEncode(sig.substr(0, 63))),
                 "ES256 signature must be 64 bytes (r||s), got 63");
  ExpectRejected(absl::StrCat(parts[0], ".", parts[1], ".", crypto::Base64UrlEncode(sig + "x")),
                 "ES256 signature must be 64 bytes (r||s), got 65");
  // A DER-encoded ECDSA signature (what X.509 uses) is not a JOSE signature.
  std::string der = crypto::EcdsaRawToDer(sig, 32).value();
  ExpectRejected(absl::StrCat(parts[0], ".", parts[1], ".", crypto::Base64UrlEncode(der)),
                 "ES256 signature must be 64 bytes");
  ExpectRejected(absl::StrCat(parts[0], ".", parts[1], "."), "got 0");
}

// ---- Key lookup ----

TEST_F(JwtSvidTest, UnknownKidOrTrustDomainIsRejected) {
  ExpectRejected(SignJwtSvid(Claims(), ec_key_, "missing").value(),
                 "no JWT authority with key ID \"missing\" in the bundle of trust domain "
                 "\"example.org\"");
  JwtSvidClaims claims = Claims();
  claims.subject = SpiffeId::FromString("spiffe://unknown.org/w").value();
  ExpectRejected(SignJwtSvid(claims, ec_key_, "ec").value(),
                 "no bundle for trust domain \"unknown.org\"");
}

TEST_F(JwtSvidTest, KeyOfAnotherTrustDomainIsNotUsed) {
  // Signed by other.org's key for an example.org subject: other.org's bundle
  // holds the kid, but only example.org's bundle may vouch for the subject.
  std::string token = SignJwtSvid(Claims(), TestKey(KeyType::kEcP256, 21), "other").value();
  ExpectRejected(token, "no JWT authority with key ID \"other\" in the bundle of trust domain "
                        "\"example.org\"");
  JwtSvidClaims claims = Claims();
  claims.subject = SpiffeId::FromString("spiffe://other.org/w").value();
  EXPECT_TRUE(Validate(SignJwtSvid(claims, TestKey(KeyType::kEcP256, 21), "other").value()).ok());
}

TEST_F(JwtSvidTest, ParseInsecureReadsWithoutBundleOrSignature) {
  JwtSvidClaims claims = Claims();
  claims.subject = SpiffeId::FromString("spiffe://unknown.org/w").value();
  std::string token = SignJwtSvid(claims, ec_key_, "k1").value();
  std::vector<std::string> parts = Split(token);
  absl::StatusOr<JwtSvid> svid = ParseInsecure(absl::StrCat(parts[0], ".", parts[1], ".AAAA"));
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->id.ToString(), "spiffe://unknown.org/w");
  EXPECT_EQ(svid->key_id, "k1");
  EXPECT_EQ(svid->alg, "ES256");
  EXPECT_EQ(svid->expiry, TestNow() + absl::Minutes(5));
}

}  // namespace
}  // namespace sigil::spiffe
