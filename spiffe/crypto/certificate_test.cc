#include "spiffe/crypto/certificate.h"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/civil_time.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/test_util.h"
#include "spiffe/crypto/x509_builder.h"

namespace sigil::crypto {
namespace {

using absl::StatusCode;
using testing::Fixture;
using testing::TestNow;

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

class OpenSslFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(std::vector<Certificate> root,
                         Certificate::ParsePemChain(Fixture("openssl_root.pem")));
    ASSERT_OK_AND_ASSIGN(std::vector<Certificate> leaf,
                         Certificate::ParsePemChain(Fixture("openssl_leaf.pem")));
    ASSERT_EQ(root.size(), 1u);
    ASSERT_EQ(leaf.size(), 1u);
    root_ = root;
    leaf_ = leaf;
  }
  const Certificate& root() const { return root_[0]; }
  const Certificate& leaf() const { return leaf_[0]; }

  std::vector<Certificate> root_, leaf_;
};

TEST_F(OpenSslFixtureTest, LeafAccessorsMatchWhatOpenSslWrote) {
  EXPECT_EQ(leaf().serial_hex(), "3e8");
  EXPECT_EQ(leaf().serial_decimal(), "1000");
  EXPECT_EQ(leaf().subject(), "O=SPIRE,C=US");
  EXPECT_EQ(leaf().issuer(), "CN=Sigil Test Root,O=Sigil Test,C=US");
  EXPECT_EQ(leaf().uri_sans(), std::vector<std::string>{"spiffe://example.org/workload"});
  EXPECT_EQ(leaf().dns_sans(), std::vector<std::string>{"workload.example.org"});
  EXPECT_FALSE(leaf().is_ca());
  EXPECT_TRUE(leaf().has_key_usage());
  EXPECT_EQ(leaf().key_usage(),
            kKeyUsageDigitalSignature | kKeyUsageKeyEncipherment | kKeyUsageKeyAgreement);
  EXPECT_EQ(HexEncode(leaf().subject_key_id()), "9cf5feb3ad7d286e39fe25e67588f703331ed9d3");
  EXPECT_EQ(leaf().authority_key_id(), root().subject_key_id());
  EXPECT_EQ(leaf().not_before(), Utc(2026, 11, 29, 12, 37, 21));
  EXPECT_EQ(leaf().not_after(), Utc(2126, 11, 5, 12, 37, 21));  // GeneralizedTime
  ASSERT_OK_AND_ASSIGN(PublicKey pub, PublicKey::FromPem(Fixture("openssl_leaf_pub.pem")));
  EXPECT_EQ(leaf().public_key(), pub);
  EXPECT_EQ(leaf().public_key().algorithm(), KeyAlgorithm::kEc);
}

TEST_F(OpenSslFixtureTest, RootAccessors) {
  EXPECT_TRUE(root().is_ca());
  EXPECT_EQ(root().serial_hex(), "123456789abcdef");
  EXPECT_EQ(root().serial_decimal(), "81985529216486895");
  EXPECT_EQ(root().subject(), root().issuer());
  EXPECT_EQ(root().key_usage(), kKeyUsageKeyCertSign | kKeyUsageCrlSign);
  EXPECT_EQ(root().uri_sans(), std::vector<std::string>{"spiffe://example.org"});
  EXPECT_TRUE(root().dns_sans().empty());
  EXPECT_EQ(root().subject_key_id().size(), 20u);
}

TEST_F(OpenSslFixtureTest, DerAndPemRoundTrip) {
  ASSERT_OK_AND_ASSIGN(Certificate again, Certificate::FromDer(leaf().der()));
  EXPECT_EQ(again, leaf());
  std::string pem = ToPem({leaf(), root()});
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> chain, Certificate::ParsePemChain(pem));
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0], leaf());
  EXPECT_EQ(chain[1], root());
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> der_chain,
                       Certificate::ParseDerChain(ConcatDer({leaf(), root()})));
  ASSERT_EQ(der_chain.size(), 2u);
  EXPECT_EQ(der_chain[0], leaf());
  EXPECT_EQ(der_chain[1], root());
  EXPECT_EQ(leaf().ToPem(), Fixture("openssl_leaf.pem"));
}

TEST_F(OpenSslFixtureTest, VerifyChainReturnsThePath) {
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> path, VerifyChain({leaf()}, {root()}, TestNow()));
  ASSERT_EQ(path.size(), 2u);
  EXPECT_EQ(path[0], leaf());
  EXPECT_EQ(path[1], root());
}

TEST_F(OpenSslFixtureTest, VerifyChainUsesTheGivenTime) {
  EXPECT_STATUS(VerifyChain({leaf()}, {root()}, Utc(2020, 1, 1)), StatusCode::kInvalidArgument,
                "certificate is not yet valid");
  EXPECT_STATUS(VerifyChain({leaf()}, {root()}, Utc(2127, 1, 1)), StatusCode::kInvalidArgument,
                "certificate has expired");
}

TEST_F(OpenSslFixtureTest, VerifyChainNeedsTheRightRoot) {
  ASSERT_OK_AND_ASSIGN(PrivateKey other_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(Certificate other_root, SelfSign(testing::RootTemplate(), other_key));
  EXPECT_STATUS(VerifyChain({leaf()}, {other_root}, TestNow()), StatusCode::kInvalidArgument,
                "unable to get local issuer certificate");
  EXPECT_STATUS(VerifyChain({}, {root()}, TestNow()), StatusCode::kInvalidArgument,
                "certificate chain is empty");
  EXPECT_STATUS(VerifyChain({leaf()}, {}, TestNow()), StatusCode::kInvalidArgument,
                "no trusted roots");
}

TEST_F(OpenSslFixtureTest, DuplicateRootsAreHarmless) {
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> path,
                       VerifyChain({leaf()}, {root(), root()}, TestNow()));
  EXPECT_EQ(path.size(), 2u);
}

TEST_F(OpenSslFixtureTest, FromDerRefusesMalformedInput) {
  const std::string& der = leaf().der();
  EXPECT_STATUS(Certificate::FromDer(""), StatusCode::kInvalidArgument, "malformed certificate");
  EXPECT_STATUS(Certificate::FromDer("garbage"), StatusCode::kInvalidArgument,
                "malformed certificate");
  EXPECT_STATUS(Certificate::FromDer(der.substr(0, der.size() - 1)),
                StatusCode::kInvalidArgument, "malformed certificate");
  EXPECT_STATUS(Certificate::FromDer(der + "xy"), StatusCode::kInvalidArgument,
                "2 bytes trail the certificate");
}

TEST_F(OpenSslFixtureTest, ParseDerChainRefusesTrailingGarbage) {
  std::string two = leaf().der() + root().der();
  EXPECT_STATUS(Certificate::ParseDerChain(""), StatusCode::kInvalidArgument,
                "empty certificate chain");
  EXPECT_STATUS(Certificate::ParseDerChain(two + "\x30"), StatusCode::kInvalidArgument,
                "trailing bytes after the last certificate");
  EXPECT_STATUS(Certificate::ParseDerChain(two + "junk"), StatusCode::kInvalidArgument,
                absl::StrCat("no DER certificate at offset ", two.size()));
  EXPECT_STATUS(Certificate::ParseDerChain(two.substr(0, two.size() - 1)),
                StatusCode::kInvalidArgument, absl::StrCat("offset ", leaf().der().size()));
  // A well-formed SEQUENCE that is not a certificate.
  EXPECT_STATUS(Certificate::ParseDerChain(leaf().der() + std::string("\x30\x03\x02\x01\x01", 5)),
                StatusCode::kInvalidArgument, "certificate 1 of chain: malformed certificate");
}

TEST_F(OpenSslFixtureTest, ParsePemChainSkipsOtherBlocksAndRefusesBadOnes) {
  std::string mixed = Fixture("openssl_leaf_key.pem") + Fixture("openssl_leaf.pem") +
                      Fixture("openssl_leaf_pub.pem") + Fixture("openssl_root.pem");
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> chain, Certificate::ParsePemChain(mixed));
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0], leaf());
  EXPECT_STATUS(Certificate::ParsePemChain(Fixture("openssl_leaf_key.pem")),
                StatusCode::kInvalidArgument, "no PEM \"CERTIFICATE\" block found");
  EXPECT_STATUS(Certificate::ParsePemChain(Fixture("openssl_leaf.pem") +
                                           EncodePem("CERTIFICATE", "nope")),
                StatusCode::kInvalidArgument, "PEM certificate 1: malformed certificate");
  EXPECT_STATUS(Certificate::ParsePemChain("-----BEGIN CERTIFICATE-----\nAAAA\n"),
                StatusCode::kInvalidArgument, "has no END line");
}

// A three-level chain made by Sigil's own builder.
class IssuedChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(root_key_, PrivateKey::Generate(KeyType::kEcP256));
    ASSERT_OK_AND_ASSIGN(Certificate root, SelfSign(testing::RootTemplate(), *root_key_));
    root_ = root;
    ASSERT_OK_AND_ASSIGN(auto root_issuer, CertificateIssuer::Create(*root_, *root_key_));
    ASSERT_OK_AND_ASSIGN(inter_key_, PrivateKey::Generate(KeyType::kEcP384));
    CertificateTemplate inter_tmpl = testing::RootTemplate();
    inter_tmpl.subject = {{NameAttribute::kCountry, "US"},
                          {NameAttribute::kOrganization, "SPIFFE"},
                          {NameAttribute::kCommonName, "intermediate"}};
    inter_tmpl.path_len = 0;
    ASSERT_OK_AND_ASSIGN(Certificate inter,
                         root_issuer->Issue(inter_tmpl, inter_key_->public_key().spki_der()));
    inter_ = inter;
    ASSERT_OK_AND_ASSIGN(auto inter_issuer, CertificateIssuer::Create(*inter_, *inter_key_));
    ASSERT_OK_AND_ASSIGN(PrivateKey leaf_key, PrivateKey::Generate(KeyType::kEcP256));
    ASSERT_OK_AND_ASSIGN(Certificate leaf, inter_issuer->Issue(testing::LeafTemplate(),
                                                               leaf_key.public_key().spki_der()));
    leaf_ = leaf;
  }

  std::optional<PrivateKey> root_key_, inter_key_;
  std::optional<Certificate> root_, inter_, leaf_;
};

TEST_F(IssuedChainTest, VerifiesThroughTheIntermediate) {
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> path,
                       VerifyChain({*leaf_, *inter_}, {*root_}, TestNow()));
  ASSERT_EQ(path.size(), 3u);
  EXPECT_EQ(path[0], *leaf_);
  EXPECT_EQ(path[1], *inter_);
  EXPECT_EQ(path[2], *root_);
}

TEST_F(IssuedChainTest, MissingIntermediateFails) {
  EXPECT_STATUS(VerifyChain({*leaf_}, {*root_}, TestNow()), StatusCode::kInvalidArgument,
                "unable to get local issuer certificate (depth 0)");
}

TEST_F(IssuedChainTest, AnyBundleCertificateIsATrustAnchor) {
  // As in go-spiffe: trusting the intermediate alone is enough.
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> path, VerifyChain({*leaf_}, {*inter_}, TestNow()));
  ASSERT_EQ(path.size(), 2u);
  EXPECT_EQ(path[1], *inter_);
}

TEST_F(IssuedChainTest, ExpiredIntermediateFailsAtItsDepth) {
  absl::Time later = TestNow() + absl::Hours(2);  // leaf lives 1 h
  EXPECT_STATUS(VerifyChain({*leaf_, *inter_}, {*root_}, later), StatusCode::kInvalidArgument,
                "certificate has expired (depth 0)");
}

}  // namespace
}  // namespace sigil::crypto
