#include "spiffe/x509svid.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/spiffe_test_util.h"

namespace sigil::spiffe {
namespace {

using ::sigil::crypto::Certificate;
using ::sigil::crypto::CertificateTemplate;
using ::sigil::crypto::KeyType;
using ::sigil::spiffe::testing::CaTemplate;
using ::sigil::spiffe::testing::LeafTemplate;
using ::sigil::spiffe::testing::MakeIntermediateCa;
using ::sigil::spiffe::testing::MakeRootCa;
using ::sigil::spiffe::testing::TestCa;
using ::sigil::spiffe::testing::TestKey;
using ::sigil::spiffe::testing::TestNow;
using ::testing::HasSubstr;

constexpr char kWorkloadId[] = "spiffe://example.org/workload";

TrustDomain Td(const char* name) { return TrustDomain::FromString(name).value(); }

class X509SvidTest : public ::testing::Test {
 protected:
  X509SvidTest()
      : root_(MakeRootCa("example.org", TestKey(KeyType::kEcP256, 10))),
        intermediate_(MakeIntermediateCa(root_, "example.org", TestKey(KeyType::kEcP384, 10))),
        other_root_(MakeRootCa("other.org", TestKey(KeyType::kEcP256, 11))),
        leaf_key_(TestKey(KeyType::kEcP256, 12)) {
    Bundle mine(Td("example.org"));
    mine.AddX509Authority(root_.cert);
    bundles_.Add(mine);
    Bundle other(Td("other.org"));
    other.AddX509Authority(other_root_.cert);
    bundles_.Add(other);
  }

  Certificate Leaf(const CertificateTemplate& t, const TestCa& ca) const {
    return ca.Issue(t, leaf_key_.public_key());
  }
  Certificate Leaf(const CertificateTemplate& t) const { return Leaf(t, root_); }
  Certificate Leaf() const { return Leaf(LeafTemplate(kWorkloadId)); }

  TestCa root_;
  TestCa intermediate_;
  TestCa other_root_;
  crypto::PrivateKey leaf_key_;
  BundleSet bundles_;
};

// ---- ValidateLeaf ----

TEST_F(X509SvidTest, ValidLeafGivesItsSpiffeId) {
  absl::StatusOr<SpiffeId> id = ValidateLeaf(Leaf());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ToString(), kWorkloadId);
}

TEST_F(X509SvidTest, LeafMayCarryDnsSansAndKeyAgreement) {
  CertificateTemplate t = LeafTemplate(kWorkloadId);
  t.dns_sans = {"web.example.org"};
  t.key_usage = crypto::kKeyUsageDigitalSignature | crypto::kKeyUsageKeyAgreement;
  EXPECT_TRUE(ValidateLeaf(Leaf(t)).ok());
}

struct LeafCase {
  std::string name;
  std::function<void(CertificateTemplate&)> mutate;
  std::string message;
};

TEST_F(X509SvidTest, LeafViolatingEachRuleIsRejected) {
  const std::vector<LeafCase> cases = {
      {"no URI SAN", [](CertificateTemplate& t) { t.uri_sans.clear(); t.dns_sans = {"a.org"}; },
       "leaf certificate must have exactly one URI SAN (§2), found 0"},
      {"two URI SANs",
       [](CertificateTemplate& t) { t.uri_sans.push_back("spiffe://example.org/other"); },
       "leaf certificate must have exactly one URI SAN (§2), found 2"},
      {"URI SAN not SPIFFE", [](CertificateTemplate& t) { t.uri_sans = {"https://example.org/w"}; },
       "leaf certificate URI SAN is not a SPIFFE ID: "},
      {"URI SAN invalid SPIFFE ID",
       [](CertificateTemplate& t) { t.uri_sans = {"spiffe://Example.org/w"}; },
       "trust domain must be lowercase"},
      {"root path", [](CertificateTemplate& t) { t.uri_sans = {"spiffe://example.org"}; },
       "must have a non-root path (§3.1)"},
      {"CA flag", [](CertificateTemplate& t) { t.is_ca = true; },
       "leaf certificate must not have the CA flag set (§4.1)"},
      {"no key usage", [](CertificateTemplate& t) { t.key_usage = 0; },
       "leaf certificate must have 'digitalSignature' key usage (§4.3)"},
      {"no digitalSignature",
       [](CertificateTemplate& t) { t.key_usage = crypto::kKeyUsageKeyEncipherment; },
       "leaf certificate must have 'digitalSignature' key usage (§4.3)"},
      {"keyCertSign",
       [](CertificateTemplate& t) {
         t.key_usage = crypto::kKeyUsageDigitalSignature | crypto::kKeyUsageKeyCertSign;
       },
       "leaf certificate must not have 'keyCertSign' key usage (§4.3)"},
      {"cRLSign",
       [](CertificateTemplate& t) {
         t.key_usage = crypto::kKeyUsageDigitalSignature | crypto::kKeyUsageCrlSign;
       },
       "leaf certificate must not have 'cRLSign' key usage (§4.3)"},
  };
  for (const LeafCase& c : cases) {
    SCOPED_TRACE(c.name);
    CertificateTemplate t = LeafTemplate(kWorkloadId);
    c.mutate(t);
    Certificate leaf = Leaf(t);
    absl::StatusOr<SpiffeId> id = ValidateLeaf(leaf);
    ASSERT_FALSE(id.ok());
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(id.status().message(), HasSubstr(c.message));
    // Verify applies the same rules even though the chain itself is sound.
    absl::StatusOr<SpiffeId> verified = Verify({leaf}, bundles_, TestNow());
    ASSERT_FALSE(verified.ok());
    EXPECT_EQ(verified.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(verified.status().message(), HasSubstr(c.message));
  }
}

// ---- ValidateSigningCertificate ----

TEST_F(X509SvidTest, RootsAndIntermediatesAreValidSigningCertificates) {
  EXPECT_TRUE(ValidateSigningCertificate(root_.cert).ok());
  EXPECT_TRUE(ValidateSigningCertificate(intermediate_.cert).ok());
  // A signing certificate need not be an SVID.
  CertificateTemplate t = CaTemplate("");
  EXPECT_TRUE(ValidateSigningCertificate(root_.Issue(t, TestKey(KeyType::kEcP256, 13).public_key())).ok());
}

TEST_F(X509SvidTest, SigningCertificateViolatingEachRuleIsRejected) {
  struct Case {
    std::string name;
    std::function<void(CertificateTemplate&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"not CA", [](CertificateTemplate& t) { t.is_ca = false; },
       "signing certificate must have the CA flag set (§4.1)"},
      {"no key usage", [](CertificateTemplate& t) { t.key_usage = 0; },
       "signing certificate must have 'keyCertSign' key usage (§4.3)"},
      {"no keyCertSign", [](CertificateTemplate& t) { t.key_usage = crypto::kKeyUsageCrlSign; },
       "signing certificate must have 'keyCertSign' key usage (§4.3)"},
      {"SPIFFE ID with a path",
       [](CertificateTemplate& t) { t.uri_sans = {"spiffe://example.org/ca"}; },
       "must not have a path (§3.2)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    CertificateTemplate t = CaTemplate("spiffe://example.org");
    c.mutate(t);
    absl::Status s =
        ValidateSigningCertificate(root_.Issue(t, TestKey(KeyType::kEcP256, 13).public_key()));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

// ---- Verify ----

TEST_F(X509SvidTest, VerifiesLeafSignedByTheRoot) {
  absl::StatusOr<SpiffeId> id = Verify({Leaf()}, bundles_, TestNow());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ToString(), kWorkloadId);
}

TEST_F(X509SvidTest, VerifiesLeafThroughAnIntermediate) {
  Certificate leaf = Leaf(LeafTemplate(kWorkloadId), intermediate_);
  absl::StatusOr<SpiffeId> id = Verify({leaf, intermediate_.cert}, bundles_, TestNow());
  ASSERT_TRUE(id.ok()) << id.status();
  // The chain may also end with the root itself.
  EXPECT_TRUE(Verify({leaf, intermediate_.cert, root_.cert}, bundles_, TestNow()).ok());
}

TEST_F(X509SvidTest, VerifiesRsaHierarchies) {
  TestCa rsa_root = MakeRootCa("rsa.org", TestKey(KeyType::kRsa2048, 10));
  Certificate leaf =
      rsa_root.Issue(LeafTemplate("spiffe://rsa.org/w"), TestKey(KeyType::kRsa2048, 11).public_key());
  Bundle b(Td("rsa.org"));
  b.AddX509Authority(rsa_root.cert);
  bundles_.Add(b);
  EXPECT_TRUE(Verify({leaf}, bundles_, TestNow()).ok());
}

TEST_F(X509SvidTest, MissingIntermediateFails) {
  Certificate leaf = Leaf(LeafTemplate(kWorkloadId), intermediate_);
  absl::StatusOr<SpiffeId> id = Verify({leaf}, bundles_, TestNow());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(id.status().message(), HasSubstr("could not verify leaf certificate"));
}

TEST_F(X509SvidTest, IntermediateViolatingPolicyFails) {
  CertificateTemplate t = CaTemplate("spiffe://example.org");
  t.key_usage = crypto::kKeyUsageCrlSign;
  const crypto::PrivateKey& key = TestKey(KeyType::kEcP256, 14);
  Certificate bad = root_.Issue(t, key.public_key());
  TestCa bad_ca{bad, key, crypto::CertificateIssuer::Create(bad, key).value()};
  Certificate leaf = Leaf(LeafTemplate(kWorkloadId), bad_ca);
  absl::StatusOr<SpiffeId> id = Verify({leaf, bad}, bundles_, TestNow());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(id.status().message(), HasSubstr("chain[1]: "));
  EXPECT_THAT(id.status().message(), HasSubstr("keyCertSign"));
}

TEST_F(X509SvidTest, ChainSignedByAnotherTrustDomainsCaFails) {
  // other.org's root signs an example.org SVID. The BundleSet trusts that
  // root, but only for other.org, so the SVID must not verify.
  Certificate forged = Leaf(LeafTemplate(kWorkloadId), other_root_);
  absl::StatusOr<SpiffeId> id = Verify({forged}, bundles_, TestNow());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(id.status().message(), HasSubstr("bundle of \"example.org\""));
  // The same certificate verifies once other.org's root is in example.org's
  // bundle, so the failure above is due to the trust domain rule alone.
  Bundle mixed(Td("example.org"));
  mixed.AddX509Authority(other_root_.cert);
  BundleSet trusting;
  trusting.Add(mixed);
  EXPECT_TRUE(Verify({forged}, trusting, TestNow()).ok());
}

TEST_F(X509SvidTest, IntermediateFromAnotherTrustDomainFails) {
  TestCa other_intermediate =
      MakeIntermediateCa(other_root_, "other.org", TestKey(KeyType::kEcP256, 15));
  Certificate forged = Leaf(LeafTemplate(kWorkloadId), other_intermediate);
  EXPECT_FALSE(Verify({forged, other_intermediate.cert}, bundles_, TestNow()).ok());
  EXPECT_FALSE(
      Verify({forged, other_intermediate.cert, other_root_.cert}, bundles_, TestNow()).ok());
}

TEST_F(X509SvidTest, UnknownTrustDomainIsNotFound) {
  Certificate leaf = Leaf(LeafTemplate("spiffe://unknown.org/w"));
  absl::StatusOr<SpiffeId> id = Verify({leaf}, bundles_, TestNow());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(id.status().message(), HasSubstr("no bundle for trust domain \"unknown.org\""));
}

TEST_F(X509SvidTest, BundleWithoutX509AuthoritiesFails) {
  BundleSet set;
  set.Add(Bundle(Td("example.org")));
  absl::StatusOr<SpiffeId> id = Verify({Leaf()}, set, TestNow());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(id.status().message(), HasSubstr("has no X.509 authorities"));
}

TEST_F(X509SvidTest, ExpiredAndNotYetValidLeavesFail) {
  Certificate leaf = Leaf();
  absl::StatusOr<SpiffeId> expired = Verify({leaf}, bundles_, TestNow() + absl::Hours(2));
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(expired.status().message(), HasSubstr("expired"));
  absl::StatusOr<SpiffeId> early = Verify({leaf}, bundles_, TestNow() - absl::Hours(2));
  ASSERT_FALSE(early.ok());
  EXPECT_THAT(early.status().message(), HasSubstr("not yet valid"));
}

TEST_F(X509SvidTest, EmptyChainFails) {
  absl::StatusOr<SpiffeId> id = Verify({}, bundles_, TestNow());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(id.status().message(), HasSubstr("empty certificate chain"));
}

TEST_F(X509SvidTest, SelfSignedLeafFails) {
  // A self-signed certificate holding an SVID's fields is not trusted.
  Certificate self = crypto::SelfSign(LeafTemplate(kWorkloadId), leaf_key_).value();
  EXPECT_FALSE(Verify({self}, bundles_, TestNow()).ok());
}

// ---- X509Svid::Parse ----

TEST_F(X509SvidTest, ParsesPemChainAndPkcs8PemKey) {
  Certificate leaf = Leaf(LeafTemplate(kWorkloadId), intermediate_);
  absl::StatusOr<X509Svid> svid =
      X509Svid::Parse(crypto::ToPem({leaf, intermediate_.cert}), leaf_key_.ToPkcs8Pem());
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->id.ToString(), kWorkloadId);
  ASSERT_EQ(svid->chain.size(), 2u);
  EXPECT_EQ(svid->chain[0], leaf);
  EXPECT_EQ(svid->chain[1], intermediate_.cert);
  EXPECT_EQ(svid->key.public_key(), leaf_key_.public_key());
  EXPECT_EQ(svid->expires_at(), leaf.not_after());
  EXPECT_EQ(Verify(svid->chain, bundles_, TestNow())->ToString(), kWorkloadId);
}

TEST_F(X509SvidTest, ParsesDerChainAndPkcs8DerKey) {
  Certificate leaf = Leaf(LeafTemplate(kWorkloadId), intermediate_);
  absl::StatusOr<X509Svid> svid =
      X509Svid::Parse(crypto::ConcatDer({leaf, intermediate_.cert}), leaf_key_.ToPkcs8Der());
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->chain.size(), 2u);
  EXPECT_EQ(svid->id.ToString(), kWorkloadId);
}

TEST_F(X509SvidTest, ParsesRsaSvid) {
  const crypto::PrivateKey& key = TestKey(KeyType::kRsa2048, 12);
  Certificate leaf = root_.Issue(LeafTemplate(kWorkloadId), key.public_key());
  absl::StatusOr<X509Svid> svid = X509Svid::Parse(leaf.ToPem(), key.ToPkcs8Pem());
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->key.algorithm(), crypto::KeyAlgorithm::kRsa);
}

TEST_F(X509SvidTest, ParsesOneFileHoldingCertificatesAndKey) {
  std::string pem = Leaf().ToPem() + leaf_key_.ToPkcs8Pem();
  absl::StatusOr<X509Svid> svid = X509Svid::Parse(pem, pem);
  ASSERT_TRUE(svid.ok()) << svid.status();
  EXPECT_EQ(svid->chain.size(), 1u);
}

TEST_F(X509SvidTest, KeyNotMatchingLeafIsRejected) {
  absl::StatusOr<X509Svid> svid =
      X509Svid::Parse(Leaf().ToPem(), TestKey(KeyType::kEcP256, 13).ToPkcs8Pem());
  ASSERT_FALSE(svid.ok());
  EXPECT_EQ(svid.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(svid.status().message(), HasSubstr("private key does not match the leaf certificate"));
}

TEST_F(X509SvidTest, ParseRejectsBadInput) {
  std::string leaf_pem = Leaf().ToPem();
  std::string key_pem = leaf_key_.ToPkcs8Pem();
  struct Case {
    std::string name;
    std::string certs;
    std::string key;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no certificates", "", key_pem, "no certificates"},
      {"whitespace certificates", "\n  \n", key_pem, "no certificates"},
      {"garbage DER", "garbage", key_pem, "cannot parse certificates"},
      {"PEM with no certificate", key_pem, key_pem, "cannot parse certificates"},
      {"truncated DER", Leaf().der().substr(0, 100), key_pem, "cannot parse certificates"},
      {"no key", leaf_pem, "", "no private key"},
      {"garbage DER key", leaf_pem, "garbage", "cannot parse PKCS#8 private key"},
      {"PEM without key", leaf_pem, leaf_pem, "no PRIVATE KEY block in PEM"},
      {"two keys", leaf_pem, key_pem + TestKey(KeyType::kEcP256, 13).ToPkcs8Pem(),
       "PEM holds 2 private keys, expected one"},
      {"encrypted key", leaf_pem, crypto::EncodePem("ENCRYPTED PRIVATE KEY", "\x30\x00"),
       "encrypted private keys are not supported"},
      {"corrupt key", leaf_pem, crypto::EncodePem("PRIVATE KEY", "\x30\x03\x02\x01\x00"),
       "cannot parse private key"},
      {"root CA as leaf", root_.cert.ToPem(), root_.key.ToPkcs8Pem(), "non-root path"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<X509Svid> svid = X509Svid::Parse(c.certs, c.key);
    ASSERT_FALSE(svid.ok());
    EXPECT_EQ(svid.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(svid.status().message(), HasSubstr(c.message));
  }
}

TEST_F(X509SvidTest, ParseAppliesLeafAndSigningPolicies) {
  CertificateTemplate t = LeafTemplate(kWorkloadId);
  t.key_usage = crypto::kKeyUsageDigitalSignature | crypto::kKeyUsageKeyCertSign;
  absl::StatusOr<X509Svid> bad_leaf = X509Svid::Parse(Leaf(t).ToPem(), leaf_key_.ToPkcs8Pem());
  EXPECT_THAT(bad_leaf.status().message(), HasSubstr("must not have 'keyCertSign'"));
  // A second leaf in place of an intermediate breaks the signing rules.
  Certificate other_leaf = Leaf(LeafTemplate("spiffe://example.org/other"));
  absl::StatusOr<X509Svid> bad_chain =
      X509Svid::Parse(crypto::ToPem({Leaf(), other_leaf}), leaf_key_.ToPkcs8Pem());
  ASSERT_FALSE(bad_chain.ok());
  EXPECT_THAT(bad_chain.status().message(), HasSubstr("chain[1]: "));
  EXPECT_THAT(bad_chain.status().message(), HasSubstr("must have the CA flag set"));
}

}  // namespace
}  // namespace sigil::spiffe
