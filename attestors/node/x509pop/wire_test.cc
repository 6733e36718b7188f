#include "attestors/node/x509pop/wire.h"

#include <gtest/gtest.h>

#include <string>

#include "attestors/node/x509pop/test_util.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::attestors::node::x509pop {
namespace {

using ::sigil::attestors::node::x509pop::testing::FixtureCert;
using ::sigil::attestors::node::x509pop::testing::NodeTemplate;
using ::sigil::attestors::node::x509pop::testing::SelfSigned;

std::string Hex(absl::string_view data) { return crypto::HexEncode(data); }

std::string Nonce(char first) {
  std::string n;
  for (size_t i = 0; i < kNonceSize; ++i) n.push_back(static_cast<char>(first + i));
  return n;
}

TEST(Fingerprint, MatchesOpenSslSha1Fingerprints) {
  // The values `openssl x509 -fingerprint -sha1` printed for the fixtures
  // (tests/testdata/x509pop/README.md).
  EXPECT_EQ(Fingerprint(FixtureCert("ca.pem")), "c1991ce1c74bffea37a924fb0bf4f8fd1e62a61a");
  EXPECT_EQ(Fingerprint(FixtureCert("ec_leaf.pem")), "eeb367314678f91fc8d6d0b71c8ee89914cb9c74");
}

TEST(SerialNumberHex, PadsToWholeBytesAsSpireDoes) {
  EXPECT_EQ(SerialNumberHex(FixtureCert("ec_leaf.pem")), "0a1b2c3d4e5f");
  EXPECT_EQ(SerialNumberHex(FixtureCert("rsa_leaf.pem")), "7f01");
  EXPECT_EQ(SerialNumberHex(FixtureCert("ca.pem")), "1001");
}

TEST(CommonName, ReadsOpenSslMadeSubject) {
  EXPECT_EQ(CommonName(FixtureCert("ec_leaf.pem")), "openssl-ec-node");
  EXPECT_EQ(CommonName(FixtureCert("ca.pem")), "x509pop Test CA");
}

TEST(CommonName, UnescapesSpecialCharacters) {
  const std::string cn = "# web,01+\"x\"\\<a>;b=c ";
  auto cert = SelfSigned(NodeTemplate(cn)).cert;
  EXPECT_EQ(CommonName(cert), cn);
}

TEST(CommonName, KeepsUtf8) {
  auto cert = SelfSigned(NodeTemplate("nœud-ü")).cert;
  EXPECT_EQ(CommonName(cert), "nœud-ü");
}

TEST(CommonName, EmptyWithoutCommonName) {
  crypto::CertificateTemplate t = NodeTemplate("x");
  t.subject = {{crypto::NameAttribute::kOrganization, "CN=fake"}, {crypto::NameAttribute::kCountry, "US"}};
  EXPECT_EQ(CommonName(SelfSigned(t).cert), "");
}

TEST(CommonName, LastCommonNameInDerOrderWinsAsInGo) {
  crypto::CertificateTemplate t = NodeTemplate("x");
  t.subject = {{crypto::NameAttribute::kCommonName, "first"},
               {crypto::NameAttribute::kOrganization, "O"},
               {crypto::NameAttribute::kCommonName, "second"}};
  EXPECT_EQ(CommonName(SelfSigned(t).cert), "second");
}

TEST(AttestationDataJson, MarshalsAsGoDoes) {
  AttestationData data{{std::string("\x01\x02", 2), std::string("\x03")}};
  EXPECT_EQ(MarshalAttestationData(data), R"({"certificates":["AQI=","Aw=="]})");
  EXPECT_EQ(MarshalAttestationData(AttestationData{}), R"({"certificates":null})");
}

TEST(AttestationDataJson, RoundTripsAndIgnoresUnknownMembers) {
  ASSERT_OK_AND_ASSIGN(AttestationData data,
                       UnmarshalAttestationData(R"( {"extra": [1, {"x": null}], "certificates": ["AQI=", "Aw=="]} )"));
  ASSERT_EQ(data.certificates.size(), 2u);
  EXPECT_EQ(data.certificates[0], std::string("\x01\x02", 2));
  EXPECT_EQ(data.certificates[1], "\x03");
}

TEST(AttestationDataJson, NullAndMissingReadAsNoCertificates) {
  for (absl::string_view text : {"null", "{}", R"({"certificates":null})", R"({"certificates":[]})"}) {
    ASSERT_OK_AND_ASSIGN(AttestationData data, UnmarshalAttestationData(text));
    EXPECT_TRUE(data.certificates.empty()) << text;
  }
}

TEST(AttestationDataJson, RefusesMalformedInput) {
  EXPECT_STATUS(UnmarshalAttestationData("not json"), absl::StatusCode::kInvalidArgument, "parse error");
  EXPECT_STATUS(UnmarshalAttestationData(""), absl::StatusCode::kInvalidArgument, "parse error");
  EXPECT_STATUS(UnmarshalAttestationData("[1]"), absl::StatusCode::kInvalidArgument, "expected a JSON object");
  EXPECT_STATUS(UnmarshalAttestationData(R"({"certificates":"AQI="})"), absl::StatusCode::kInvalidArgument,
                "\"certificates\" must be an array");
  EXPECT_STATUS(UnmarshalAttestationData(R"({"certificates":[7]})"), absl::StatusCode::kInvalidArgument,
                "\"certificates\"[0] must be a base64 string");
  EXPECT_STATUS(UnmarshalAttestationData(R"({"certificates":["AQI=","*"]})"), absl::StatusCode::kInvalidArgument,
                "\"certificates\"[1]: base64");
}

TEST(ChallengeJson, MarshalsAsGoDoes) {
  Challenge ec;
  ec.ecdsa_signature = EcdsaSignatureChallenge{Nonce(0)};
  const std::string b64 = crypto::Base64Encode(Nonce(0));
  EXPECT_EQ(MarshalChallenge(ec), absl::StrCat(R"({"rsa_signature":null,"ecdsa_signature":{"nonce":")", b64, R"("}})"));
  Challenge rsa;
  rsa.rsa_signature = RsaSignatureChallenge{Nonce(0)};
  EXPECT_EQ(MarshalChallenge(rsa),
            absl::StrCat(R"({"rsa_signature":{"nonce":")", b64, R"("},"ecdsa_signature":null})"));
}

TEST(ChallengeJson, RoundTrips) {
  Challenge c;
  c.ecdsa_signature = EcdsaSignatureChallenge{Nonce(5)};
  ASSERT_OK_AND_ASSIGN(Challenge back, UnmarshalChallenge(MarshalChallenge(c)));
  EXPECT_FALSE(back.rsa_signature.has_value());
  ASSERT_TRUE(back.ecdsa_signature.has_value());
  EXPECT_EQ(back.ecdsa_signature->nonce, Nonce(5));
}

TEST(ChallengeJson, RefusesWrongTypes) {
  EXPECT_STATUS(UnmarshalChallenge(R"({"ecdsa_signature":"x"})"), absl::StatusCode::kInvalidArgument,
                "\"ecdsa_signature\" must be an object");
  EXPECT_STATUS(UnmarshalChallenge(R"({"rsa_signature":{"nonce":12}})"), absl::StatusCode::kInvalidArgument,
                "rsa_signature: \"nonce\" must be a base64 string");
}

TEST(ResponseJson, MarshalsAsGoDoes) {
  Response ec;
  ec.ecdsa_signature = EcdsaSignatureResponse{"\x01", "\x02\x03", "\x04"};
  EXPECT_EQ(MarshalResponse(ec), R"({"rsa_signature":null,"ecdsa_signature":{"nonce":"AQ==","r":"AgM=","s":"BA=="}})");
  Response rsa;
  rsa.rsa_signature = RsaSignatureResponse{"\x01", "\x05"};
  EXPECT_EQ(MarshalResponse(rsa), R"({"rsa_signature":{"nonce":"AQ==","signature":"BQ=="},"ecdsa_signature":null})");
}

TEST(ResponseJson, ReadsGoOutputWithWhitespaceAndNulls) {
  ASSERT_OK_AND_ASSIGN(Response r, UnmarshalResponse(R"({
    "rsa_signature": null,
    "ecdsa_signature": {"nonce": "AQ==", "r": "AgM=", "s": null}
  })"));
  EXPECT_FALSE(r.rsa_signature.has_value());
  ASSERT_TRUE(r.ecdsa_signature.has_value());
  EXPECT_EQ(r.ecdsa_signature->nonce, "\x01");
  EXPECT_EQ(r.ecdsa_signature->r, "\x02\x03");
  EXPECT_EQ(r.ecdsa_signature->s, "");
}

TEST(ResponseJson, RefusesMalformedInput) {
  EXPECT_STATUS(UnmarshalResponse("{"), absl::StatusCode::kInvalidArgument, "parse error");
  EXPECT_STATUS(UnmarshalResponse(R"({"ecdsa_signature":{"r":5}})"), absl::StatusCode::kInvalidArgument,
                "ecdsa_signature: \"r\" must be a base64 string");
  EXPECT_STATUS(UnmarshalResponse(R"({"rsa_signature":{"signature":"A"}})"), absl::StatusCode::kInvalidArgument,
                "rsa_signature: \"signature\": base64");
}

TEST(SignedMessage, ConcatenatesNoncesOfTheRightLength) {
  ASSERT_OK_AND_ASSIGN(std::string m, SignedMessage(Nonce(0), Nonce(32)));
  EXPECT_EQ(m, Nonce(0) + Nonce(32));
  EXPECT_STATUS(SignedMessage(Nonce(0).substr(1), Nonce(32)), absl::StatusCode::kInvalidArgument,
                "invalid challenge nonce");
  EXPECT_STATUS(SignedMessage(Nonce(0), Nonce(32) + "x"), absl::StatusCode::kInvalidArgument, "invalid response nonce");
}

}  // namespace
}  // namespace sigil::attestors::node::x509pop
