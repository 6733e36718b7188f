#include "ca/upstream_authority.h"

#include <gtest/gtest.h>

#include "ca/ca_test_util.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::ca {
namespace {

using testing::MakeUpstreamPki;
using testing::TempDir;
using testing::TestKey;
using testing::UpstreamPki;
using testing::WriteTestFile;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

spiffe::TrustDomain Td() { return spiffe::TrustDomain::FromString("example.org").value(); }

crypto::DistinguishedName CaSubject() {
  return {{crypto::NameAttribute::kCountry, "US"}, {crypto::NameAttribute::kOrganization, "SPIFFE"}};
}

class DiskUpstreamAuthorityTest : public ::testing::Test {
 protected:
  DiskUpstreamAuthorityTest()
      : pki_(MakeUpstreamPki(kNow, absl::Hours(24 * 365), absl::Hours(24 * 30))) {}

  void SetUp() override {
    root_pem_ = dir_.File("root.pem");
    root_key_pem_ = dir_.File("root.key");
    intermediate_pem_ = dir_.File("intermediate.pem");
    intermediate_key_pem_ = dir_.File("intermediate.key");
    WriteTestFile(root_pem_, pki_.root.ToPem());
    WriteTestFile(root_key_pem_, pki_.root_key.ToPkcs8Pem(), 0600);
    WriteTestFile(intermediate_pem_, pki_.intermediate.ToPem());
    WriteTestFile(intermediate_key_pem_, pki_.intermediate_key.ToPkcs8Pem(), 0600);
  }

  TempDir dir_;
  UpstreamPki pki_;
  std::string root_pem_, root_key_pem_, intermediate_pem_, intermediate_key_pem_;
};

TEST_F(DiskUpstreamAuthorityTest, SelfSignedUpstreamIsItsOwnRoot) {
  ASSERT_OK_AND_ASSIGN(auto upstream,
                       DiskUpstreamAuthority::Create(root_pem_, root_key_pem_, "", kNow));
  EXPECT_STREQ(upstream->name(), "disk");
  const crypto::PrivateKey& ca_key = TestKey(1);
  ASSERT_OK_AND_ASSIGN(UpstreamSignedCa signed_ca,
                       upstream->MintX509Ca(ca_key.public_key(), CaSubject(), Td(),
                                            kNow - absl::Seconds(10), kNow + absl::Hours(24)));
  ASSERT_EQ(signed_ca.chain.size(), 1u);
  ASSERT_EQ(signed_ca.roots.size(), 1u);
  EXPECT_EQ(signed_ca.roots[0], pki_.root);

  const crypto::Certificate& ca = signed_ca.chain[0];
  EXPECT_EQ(ca.public_key(), ca_key.public_key());
  EXPECT_TRUE(ca.is_ca());
  EXPECT_EQ(ca.key_usage(), crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign |
                                crypto::kKeyUsageDigitalSignature);
  EXPECT_EQ(ca.uri_sans(), std::vector<std::string>{"spiffe://example.org"});
  EXPECT_EQ(ca.subject(), "O=SPIFFE,C=US");
  EXPECT_EQ(ca.authority_key_id(), pki_.root.subject_key_id());
  EXPECT_EQ(ca.not_before(), kNow - absl::Seconds(10));
  EXPECT_EQ(ca.not_after(), kNow + absl::Hours(24));
  EXPECT_OK(crypto::VerifyChain(signed_ca.chain, signed_ca.roots, kNow));
}

TEST_F(DiskUpstreamAuthorityTest, IntermediateUpstreamIsInTheChainAndRootInTheBundle) {
  ASSERT_OK_AND_ASSIGN(auto upstream, DiskUpstreamAuthority::Create(
                                          intermediate_pem_, intermediate_key_pem_, root_pem_, kNow));
  ASSERT_OK_AND_ASSIGN(UpstreamSignedCa signed_ca,
                       upstream->MintX509Ca(TestKey(1).public_key(), CaSubject(), Td(),
                                            kNow - absl::Seconds(10), kNow + absl::Hours(24)));
  ASSERT_EQ(signed_ca.chain.size(), 2u);
  EXPECT_EQ(signed_ca.chain[1], pki_.intermediate);
  EXPECT_EQ(signed_ca.roots, std::vector<crypto::Certificate>{pki_.root});
  EXPECT_EQ(signed_ca.chain[0].authority_key_id(), pki_.intermediate.subject_key_id());
  EXPECT_OK(crypto::VerifyChain(signed_ca.chain, signed_ca.roots, kNow));
  // Without the intermediate the new CA does not chain to the root.
  EXPECT_FALSE(crypto::VerifyChain({signed_ca.chain[0]}, signed_ca.roots, kNow).ok());
}

TEST_F(DiskUpstreamAuthorityTest, RootInCertFileIsNotRepeatedInChain) {
  const std::string both = dir_.File("both.pem");
  WriteTestFile(both, pki_.intermediate.ToPem() + pki_.root.ToPem());
  ASSERT_OK_AND_ASSIGN(auto upstream,
                       DiskUpstreamAuthority::Create(both, intermediate_key_pem_, root_pem_, kNow));
  ASSERT_OK_AND_ASSIGN(UpstreamSignedCa signed_ca,
                       upstream->MintX509Ca(TestKey(1).public_key(), CaSubject(), Td(),
                                            kNow - absl::Seconds(10), kNow + absl::Hours(1)));
  ASSERT_EQ(signed_ca.chain.size(), 2u);
  EXPECT_EQ(signed_ca.chain[1], pki_.intermediate);
}

TEST_F(DiskUpstreamAuthorityTest, LifetimeIsCappedAtUpstreamExpiry) {
  ASSERT_OK_AND_ASSIGN(auto upstream, DiskUpstreamAuthority::Create(
                                          intermediate_pem_, intermediate_key_pem_, root_pem_, kNow));
  ASSERT_OK_AND_ASSIGN(UpstreamSignedCa signed_ca,
                       upstream->MintX509Ca(TestKey(1).public_key(), CaSubject(), Td(),
                                            kNow - absl::Seconds(10), kNow + absl::Hours(24 * 90)));
  EXPECT_EQ(signed_ca.chain[0].not_after(), pki_.intermediate.not_after());
}

TEST_F(DiskUpstreamAuthorityTest, ExpiredUpstreamIsFailedPrecondition) {
  ASSERT_OK_AND_ASSIGN(auto upstream, DiskUpstreamAuthority::Create(
                                          intermediate_pem_, intermediate_key_pem_, root_pem_, kNow));
  const absl::Time later = pki_.intermediate.not_after() + absl::Hours(1);
  EXPECT_STATUS(upstream->MintX509Ca(TestKey(1).public_key(), CaSubject(), Td(), later,
                                     later + absl::Hours(1)),
                absl::StatusCode::kFailedPrecondition, "upstream certificate expired");
  EXPECT_STATUS(upstream->MintX509Ca(TestKey(1).public_key(), CaSubject(), Td(), kNow, kNow),
                absl::StatusCode::kInvalidArgument, "not_after");
}

TEST_F(DiskUpstreamAuthorityTest, KeyThatDoesNotMatchIsRefused) {
  EXPECT_STATUS(DiskUpstreamAuthority::Create(intermediate_pem_, root_key_pem_, root_pem_, kNow),
                absl::StatusCode::kInvalidArgument,
                absl::StrCat("key_file_path \"", root_key_pem_, "\": the key does not match"));
}

TEST_F(DiskUpstreamAuthorityTest, IntermediateWithoutBundleIsRefused) {
  EXPECT_STATUS(DiskUpstreamAuthority::Create(intermediate_pem_, intermediate_key_pem_, "", kNow),
                absl::StatusCode::kInvalidArgument, "not self-signed");
}

TEST_F(DiskUpstreamAuthorityTest, ChainNotVerifyingAgainstBundleIsRefused) {
  crypto::Certificate unrelated_root =
      crypto::SelfSign(testing::CaTemplate("unrelated", kNow - absl::Hours(1), kNow + absl::Hours(5)),
                       TestKey(7))
          .value();
  const std::string bundle = dir_.File("unrelated.pem");
  WriteTestFile(bundle, unrelated_root.ToPem());
  EXPECT_STATUS(
      DiskUpstreamAuthority::Create(intermediate_pem_, intermediate_key_pem_, bundle, kNow),
      absl::StatusCode::kInvalidArgument, "does not verify against the roots");
}

TEST_F(DiskUpstreamAuthorityTest, UpstreamExpiredAtStartupIsRefused) {
  const absl::Time later = pki_.intermediate.not_after() + absl::Hours(1);
  EXPECT_STATUS(
      DiskUpstreamAuthority::Create(intermediate_pem_, intermediate_key_pem_, root_pem_, later),
      absl::StatusCode::kInvalidArgument, "expired");
}

TEST_F(DiskUpstreamAuthorityTest, NonCaCertificateIsRefused) {
  crypto::CertificateTemplate leaf =
      testing::CaTemplate("leaf", kNow - absl::Hours(1), kNow + absl::Hours(1));
  leaf.is_ca = false;
  leaf.key_usage = crypto::kKeyUsageDigitalSignature;
  auto issuer = crypto::CertificateIssuer::Create(pki_.root, pki_.root_key).value();
  crypto::Certificate cert = issuer->Issue(leaf, TestKey(2).public_key().spki_der()).value();
  const std::string cert_path = dir_.File("leaf.pem");
  const std::string key_path = dir_.File("leaf.key");
  WriteTestFile(cert_path, cert.ToPem());
  WriteTestFile(key_path, TestKey(2).ToPkcs8Pem(), 0600);
  EXPECT_STATUS(DiskUpstreamAuthority::Create(cert_path, key_path, root_pem_, kNow),
                absl::StatusCode::kInvalidArgument, "not a CA certificate with the keyCertSign");
}

TEST_F(DiskUpstreamAuthorityTest, UnreadableOrMalformedFilesAreNamed) {
  const std::string missing = dir_.File("missing.pem");
  EXPECT_STATUS(DiskUpstreamAuthority::Create(missing, root_key_pem_, "", kNow),
                absl::StatusCode::kInvalidArgument,
                absl::StrCat("cert_file_path \"", missing, "\""));
  EXPECT_STATUS(DiskUpstreamAuthority::Create(root_pem_, missing, "", kNow),
                absl::StatusCode::kInvalidArgument, absl::StrCat("key_file_path \"", missing, "\""));
  EXPECT_STATUS(DiskUpstreamAuthority::Create(intermediate_pem_, intermediate_key_pem_, missing, kNow),
                absl::StatusCode::kInvalidArgument,
                absl::StrCat("bundle_file_path \"", missing, "\""));

  const std::string garbage = dir_.File("garbage.pem");
  WriteTestFile(garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
  EXPECT_STATUS(DiskUpstreamAuthority::Create(garbage, root_key_pem_, "", kNow),
                absl::StatusCode::kInvalidArgument, absl::StrCat("cert_file_path \"", garbage, "\""));
  EXPECT_STATUS(DiskUpstreamAuthority::Create(root_pem_, garbage, "", kNow),
                absl::StatusCode::kInvalidArgument, absl::StrCat("key_file_path \"", garbage, "\""));
  EXPECT_STATUS(DiskUpstreamAuthority::Create("", root_key_pem_, "", kNow),
                absl::StatusCode::kInvalidArgument, "cert_file_path must not be empty");
}

}  // namespace
}  // namespace sigil::ca
