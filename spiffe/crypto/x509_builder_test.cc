#include "spiffe/crypto/x509_builder.h"

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "spiffe/crypto/der.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/test_util.h"

namespace sigil::crypto {
namespace {

using absl::StatusCode;
using testing::Fixture;
using testing::LeafTemplate;
using testing::OpenSslParse;
using testing::RootTemplate;
using testing::TestNow;

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

std::string S(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// The extnValue bytes and critical flag of extension `nid`, via OpenSSL.
struct Ext {
  bool present = false;
  bool critical = false;
  std::string value;
};
Ext GetExt(X509* x, int nid) {
  Ext out;
  int idx = X509_get_ext_by_NID(x, nid, -1);
  if (idx < 0) return out;
  X509_EXTENSION* ext = X509_get_ext(x, idx);
  out.present = true;
  out.critical = X509_EXTENSION_get_critical(ext) == 1;
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  out.value.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                   ASN1_STRING_length(data));
  return out;
}

class Ca {
 public:
  static Ca Make(KeyType type) {
    PrivateKey key = *PrivateKey::Generate(type);
    Certificate cert = *SelfSign(RootTemplate(), key);
    return Ca(key, cert);
  }
  const PrivateKey& key() const { return key_; }
  const Certificate& cert() const { return cert_; }
  const CertificateIssuer& issuer() const { return *issuer_; }

 private:
  Ca(PrivateKey key, Certificate cert)
      : key_(key), cert_(cert), issuer_(*CertificateIssuer::Create(cert, key)) {}
  PrivateKey key_;
  Certificate cert_;
  std::shared_ptr<CertificateIssuer> issuer_;
};

class IssuerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = new Ca(Ca::Make(KeyType::kEcP256));
    leaf_key_ = new PrivateKey(*PrivateKey::Generate(KeyType::kEcP256));
  }
  static const Ca& ca() { return *ca_; }
  static const std::string& leaf_spki() { return leaf_key_->public_key().spki_der(); }

  static Ca* ca_;
  static PrivateKey* leaf_key_;
};
Ca* IssuerTest::ca_ = nullptr;
PrivateKey* IssuerTest::leaf_key_ = nullptr;

TEST_F(IssuerTest, SelfSignedRootIsWhatOpenSslExpects) {
  auto x = OpenSslParse(ca().cert().der());
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(X509_get_version(x.get()), X509_VERSION_3);
  EXPECT_EQ(X509_check_issued(x.get(), x.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(x.get(), ca().key().public_key().get()), 1);
  EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_check_ca(x.get()), 1);
  EXPECT_TRUE(ca().cert().is_ca());
  EXPECT_EQ(ca().cert().key_usage(), kKeyUsageKeyCertSign | kKeyUsageCrlSign);
  EXPECT_EQ(ca().cert().subject(), "O=SPIFFE,C=US");
  EXPECT_EQ(ca().cert().issuer(), "O=SPIFFE,C=US");
  EXPECT_EQ(ca().cert().authority_key_id(), ca().cert().subject_key_id());
  // RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits, which
  // is what X509_pubkey_digest computes.
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  ASSERT_EQ(X509_pubkey_digest(x.get(), EVP_sha1(), md, &md_len), 1);
  EXPECT_EQ(ca().cert().subject_key_id(), std::string(reinterpret_cast<char*>(md), md_len));
  EXPECT_EQ(ca().cert().uri_sans(), std::vector<std::string>{"spiffe://example.org"});
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> path,
                       VerifyChain({ca().cert()}, {ca().cert()}, TestNow()));
  EXPECT_EQ(path.size(), 1u);
}

TEST_F(IssuerTest, SpiffeLeafHasTheRequestedContents) {
  CertificateTemplate tmpl = LeafTemplate();
  ASSERT_OK_AND_ASSIGN(Certificate leaf, ca().issuer().Issue(tmpl, leaf_spki()));
  EXPECT_EQ(leaf.public_key(), leaf_key_->public_key());
  EXPECT_EQ(leaf.uri_sans(), tmpl.uri_sans);
  EXPECT_TRUE(leaf.dns_sans().empty());
  EXPECT_FALSE(leaf.is_ca());
  EXPECT_EQ(leaf.key_usage(),
            kKeyUsageDigitalSignature | kKeyUsageKeyEncipherment | kKeyUsageKeyAgreement);
  EXPECT_EQ(leaf.subject(), "O=SPIRE,C=US");
  EXPECT_EQ(leaf.issuer(), ca().cert().subject());
  EXPECT_EQ(leaf.authority_key_id(), ca().cert().subject_key_id());
  EXPECT_EQ(leaf.serial_hex(), HexEncode(tmpl.serial).substr(
                                   HexEncode(tmpl.serial).find_first_not_of('0')));
  EXPECT_EQ(leaf.not_before(), absl::FromUnixSeconds(absl::ToUnixSeconds(tmpl.not_before)));
  EXPECT_EQ(leaf.not_after(), absl::FromUnixSeconds(absl::ToUnixSeconds(tmpl.not_after)));

  auto x = OpenSslParse(leaf.der());
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(X509_get_version(x.get()), X509_VERSION_3);
  EXPECT_EQ(X509_check_issued(ca().cert().get(), x.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(x.get(), ca().key().public_key().get()), 1);
  EXPECT_EQ(X509_get_extended_key_usage(x.get()), uint32_t{XKU_SSL_SERVER | XKU_SSL_CLIENT});
  EXPECT_EQ(X509_check_ca(x.get()), 0);
  // The issuer Name is the CA's subject, byte for byte.
  unsigned char* a = nullptr;
  unsigned char* b = nullptr;
  int a_len = i2d_X509_NAME(X509_get_issuer_name(x.get()), &a);
  int b_len = i2d_X509_NAME(X509_get_subject_name(ca().cert().get()), &b);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(a), a_len),
            std::string(reinterpret_cast<char*>(b), b_len));
  OPENSSL_free(a);
  OPENSSL_free(b);

  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> path,
                       VerifyChain({leaf}, {ca().cert()}, TestNow()));
  EXPECT_EQ(path.size(), 2u);
}

TEST_F(IssuerTest, ExtensionsHaveTheRightCriticality) {
  ASSERT_OK_AND_ASSIGN(std::string der, ca().issuer().IssueDer(LeafTemplate(), leaf_spki()));
  auto x = OpenSslParse(der);
  ASSERT_NE(x, nullptr);
  struct Case {
    int nid;
    bool critical;
  };
  for (const Case& c : {Case{NID_key_usage, true}, Case{NID_basic_constraints, true},
                        Case{NID_ext_key_usage, false}, Case{NID_subject_alt_name, false},
                        Case{NID_subject_key_identifier, false},
                        Case{NID_authority_key_identifier, false}}) {
    Ext ext = GetExt(x.get(), c.nid);
    EXPECT_TRUE(ext.present) << OBJ_nid2sn(c.nid);
    EXPECT_EQ(ext.critical, c.critical) << OBJ_nid2sn(c.nid);
  }
  EXPECT_EQ(X509_get_ext_count(x.get()), 6);
  // basicConstraints of a leaf: an empty SEQUENCE (cA DEFAULT FALSE omitted).
  EXPECT_EQ(GetExt(x.get(), NID_basic_constraints).value, S({0x30, 0x00}));
  // AKI carries the keyIdentifier only.
  EXPECT_EQ(GetExt(x.get(), NID_authority_key_identifier).value,
            der::Tlv(der::kSequence, der::Tlv(0x80, ca().cert().subject_key_id())));
}

TEST_F(IssuerTest, EmptySubjectMakesTheSanCritical) {
  CertificateTemplate tmpl = LeafTemplate();
  tmpl.subject.clear();
  ASSERT_OK_AND_ASSIGN(Certificate leaf, ca().issuer().Issue(tmpl, leaf_spki()));
  EXPECT_EQ(leaf.subject(), "");
  auto x = OpenSslParse(leaf.der());
  EXPECT_TRUE(GetExt(x.get(), NID_subject_alt_name).critical);
  EXPECT_OK(VerifyChain({leaf}, {ca().cert()}, TestNow()).status());
}

TEST_F(IssuerTest, OmitsKeyUsageAndEkuWhenNotAsked) {
  CertificateTemplate tmpl = LeafTemplate();
  tmpl.key_usage = 0;
  tmpl.ext_key_usage.clear();
  tmpl.dns_sans = {"a.example.org", "b.example.org"};
  ASSERT_OK_AND_ASSIGN(Certificate leaf, ca().issuer().Issue(tmpl, leaf_spki()));
  EXPECT_FALSE(leaf.has_key_usage());
  EXPECT_EQ(leaf.key_usage(), 0u);
  EXPECT_EQ(leaf.dns_sans(), tmpl.dns_sans);
  auto x = OpenSslParse(leaf.der());
  EXPECT_FALSE(GetExt(x.get(), NID_key_usage).present);
  EXPECT_FALSE(GetExt(x.get(), NID_ext_key_usage).present);
}

// RFC 5280 §4.2.1.3 + X.690 §11.2.2: named bits, trailing zero bits trimmed.
TEST_F(IssuerTest, KeyUsageIsMinimalNamedBitList) {
  struct Case {
    uint32_t usage;
    std::string der;
  };
  const Case cases[] = {
      {kKeyUsageDigitalSignature, S({0x03, 0x02, 0x07, 0x80})},
      {kKeyUsageContentCommitment, S({0x03, 0x02, 0x06, 0x40})},
      {kKeyUsageDigitalSignature | kKeyUsageKeyEncipherment | kKeyUsageKeyAgreement,
       S({0x03, 0x02, 0x03, 0xa8})},
      {kKeyUsageKeyCertSign | kKeyUsageCrlSign, S({0x03, 0x02, 0x01, 0x06})},
      {kKeyUsageKeyCertSign | kKeyUsageCrlSign | kKeyUsageDigitalSignature,
       S({0x03, 0x02, 0x01, 0x86})},
      {0x7f, S({0x03, 0x02, 0x01, 0xfe})},
  };
  for (const Case& c : cases) {
    CertificateTemplate tmpl = LeafTemplate();
    tmpl.key_usage = c.usage;
    ASSERT_OK_AND_ASSIGN(Certificate leaf, ca().issuer().Issue(tmpl, leaf_spki()));
    auto x = OpenSslParse(leaf.der());
    Ext ext = GetExt(x.get(), NID_key_usage);
    EXPECT_TRUE(ext.critical);
    EXPECT_EQ(HexEncode(ext.value), HexEncode(c.der)) << c.usage;
    EXPECT_EQ(leaf.key_usage(), c.usage);
  }
}

TEST_F(IssuerTest, SerialIsEncodedAsAPositiveMinimalInteger) {
  struct Case {
    std::string serial;
    const char* hex;
  };
  const Case cases[] = {
      {S({0x01}), "1"},
      {S({0x00, 0x00, 0x2a}), "2a"},
      {S({0x80}), "80"},  // needs a sign byte
      {S({0xff, 0xee}), "ffee"},
      {std::string(20, '\x7f'), "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f"},
      {std::string(19, '\xff'), "ffffffffffffffffffffffffffffffffffffff"},
  };
  for (const Case& c : cases) {
    CertificateTemplate tmpl = LeafTemplate();
    tmpl.serial = c.serial;
    ASSERT_OK_AND_ASSIGN(Certificate leaf, ca().issuer().Issue(tmpl, leaf_spki()));
    EXPECT_EQ(leaf.serial_hex(), c.hex);
    auto x = OpenSslParse(leaf.der());
    const ASN1_INTEGER* serial = X509_get0_serialNumber(x.get());
    EXPECT_EQ(ASN1_STRING_type(serial), V_ASN1_INTEGER) << c.hex;  // not negative
  }
}

TEST_F(IssuerTest, ValidityUsesUtcTimeBefore2050AndGeneralizedTimeAfter) {
  struct Case {
    absl::Time not_before, not_after;
    int nb_type, na_type;
  };
  const Case cases[] = {
      {Utc(2030, 1, 1), Utc(2049, 12, 31, 23, 59, 59), V_ASN1_UTCTIME, V_ASN1_UTCTIME},
      {Utc(2030, 1, 1), Utc(2050, 1, 1), V_ASN1_UTCTIME, V_ASN1_GENERALIZEDTIME},
      {Utc(1950, 1, 1), Utc(9999, 12, 31, 23, 59, 59), V_ASN1_UTCTIME, V_ASN1_GENERALIZEDTIME},
      {Utc(2051, 6, 1), Utc(2052, 6, 1), V_ASN1_GENERALIZEDTIME, V_ASN1_GENERALIZEDTIME},
  };
  for (const Case& c : cases) {
    CertificateTemplate tmpl = LeafTemplate();
    tmpl.not_before = c.not_before;
    tmpl.not_after = c.not_after;
    ASSERT_OK_AND_ASSIGN(Certificate leaf, ca().issuer().Issue(tmpl, leaf_spki()));
    auto x = OpenSslParse(leaf.der());
    EXPECT_EQ(ASN1_STRING_type(X509_get0_notBefore(x.get())), c.nb_type);
    EXPECT_EQ(ASN1_STRING_type(X509_get0_notAfter(x.get())), c.na_type);
    EXPECT_EQ(leaf.not_before(), c.not_before);
    EXPECT_EQ(leaf.not_after(), c.not_after);
  }
}

TEST_F(IssuerTest, SubSecondTimesAreTruncated) {
  CertificateTemplate tmpl = LeafTemplate();
  tmpl.not_before = Utc(2030, 1, 1) + absl::Milliseconds(999);
  tmpl.not_after = Utc(2030, 1, 1, 1) + absl::Milliseconds(1);
  ASSERT_OK_AND_ASSIGN(Certificate leaf, ca().issuer().Issue(tmpl, leaf_spki()));
  EXPECT_EQ(leaf.not_before(), Utc(2030, 1, 1));
  EXPECT_EQ(leaf.not_after(), Utc(2030, 1, 1, 1));
}

TEST_F(IssuerTest, IntermediateWithPathLength) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  CertificateTemplate tmpl = RootTemplate();
  tmpl.path_len = 0;
  ASSERT_OK_AND_ASSIGN(Certificate inter, ca().issuer().Issue(tmpl, key.public_key().spki_der()));
  EXPECT_TRUE(inter.is_ca());
  auto x = OpenSslParse(inter.der());
  EXPECT_EQ(X509_get_pathlen(x.get()), 0);
  EXPECT_EQ(GetExt(x.get(), NID_basic_constraints).value,
            S({0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00}));
  // The intermediate can issue in turn.
  ASSERT_OK_AND_ASSIGN(auto issuer, CertificateIssuer::Create(inter, key));
  ASSERT_OK_AND_ASSIGN(Certificate leaf, issuer->Issue(LeafTemplate(), leaf_spki()));
  EXPECT_OK(VerifyChain({leaf, inter}, {ca().cert()}, TestNow()).status());
}

TEST_F(IssuerTest, SubjectNameAttributesAndTypes) {
  CertificateTemplate tmpl = LeafTemplate();
  tmpl.subject = {{NameAttribute::kCountry, "DE"},
                  {NameAttribute::kOrganization, "Bücher GmbH"},
                  {NameAttribute::kOrganizationalUnit, "Ops"},
                  {NameAttribute::kCommonName, std::string(64, 'c')},
                  {NameAttribute::kSerialNumber, "1234-ab"}};
  ASSERT_OK_AND_ASSIGN(Certificate leaf, ca().issuer().Issue(tmpl, leaf_spki()));
  auto x = OpenSslParse(leaf.der());
  X509_NAME* name = X509_get_subject_name(x.get());
  ASSERT_EQ(X509_NAME_entry_count(name), 5);
  struct Case {
    int nid;
    int type;
  };
  const Case cases[] = {{NID_countryName, V_ASN1_PRINTABLESTRING},
                        {NID_organizationName, V_ASN1_UTF8STRING},
                        {NID_organizationalUnitName, V_ASN1_UTF8STRING},
                        {NID_commonName, V_ASN1_UTF8STRING},
                        {NID_serialNumber, V_ASN1_PRINTABLESTRING}};
  for (int i = 0; i < 5; ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    EXPECT_EQ(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), cases[i].nid);
    EXPECT_EQ(ASN1_STRING_type(X509_NAME_ENTRY_get_data(e)), cases[i].type);
  }
  EXPECT_NE(leaf.subject().find("O=Bücher GmbH"), std::string::npos) << leaf.subject();
}

TEST_F(IssuerTest, RefusesBadTemplates) {
  struct Case {
    const char* name;
    std::function<void(CertificateTemplate&)> edit;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"empty serial", [](auto& t) { t.serial.clear(); }, "template: serial is empty"},
      {"zero serial", [](auto& t) { t.serial = std::string(3, '\0'); },
       "template: serial must be positive"},
      {"21-byte serial", [](auto& t) { t.serial = std::string(21, '\x01'); },
       "serial is 21 octets once DER-encoded"},
      {"20-byte serial with top bit", [](auto& t) { t.serial = std::string(20, '\x80'); },
       "serial is 21 octets"},
      {"not_after == not_before", [](auto& t) { t.not_after = t.not_before; },
       "not_after must be later than not_before"},
      {"not_after before not_before", [](auto& t) { t.not_after = t.not_before - absl::Seconds(1); },
       "not_after must be later than not_before"},
      {"infinite", [](auto& t) { t.not_after = absl::InfiniteFuture(); }, "not_after is infinite"},
      {"before 1950", [](auto& t) { t.not_before = Utc(1949, 12, 31); },
       "not_before year 1949 is outside 1950..9999"},
      {"after 9999", [](auto& t) { t.not_after = Utc(10000, 1, 1); },
       "not_after year 10000 is outside"},
      {"path_len without CA", [](auto& t) { t.path_len = 1; },
       "path_len is only allowed with is_ca"},
      {"unknown KU bit", [](auto& t) { t.key_usage = 1u << 7; }, "unknown key usage bits 0x80"},
      {"nothing names the subject",
       [](auto& t) {
         t.subject.clear();
         t.uri_sans.clear();
       },
       "subject and SANs are both empty"},
      {"non-ASCII URI", [](auto& t) { t.uri_sans = {"spiffe://example.org/caf\xc3\xa9"}; },
       "URI SAN \"spiffe://example.org/caf\xc3\xa9\" is not an IA5String"},
      {"empty URI", [](auto& t) { t.uri_sans = {""}; }, "URI SAN is empty"},
      {"non-ASCII DNS", [](auto& t) { t.dns_sans = {"b\xc3\xbc" "cher.de"}; },
       "DNS SAN \"b\xc3\xbc" "cher.de\" is not an IA5String"},
      {"long country", [](auto& t) { t.subject = {{NameAttribute::kCountry, "USA"}}; },
       "subject C \"USA\" must be a two-letter country code"},
      {"long CN", [](auto& t) { t.subject = {{NameAttribute::kCommonName, std::string(65, 'x')}}; },
       "subject CN is longer than 64 characters"},
      {"bad UTF-8", [](auto& t) { t.subject = {{NameAttribute::kOrganization, "\xc3\x28"}}; },
       "subject O is not valid UTF-8"},
      {"overlong UTF-8", [](auto& t) { t.subject = {{NameAttribute::kOrganization, "\xc0\xaf"}}; },
       "subject O is not valid UTF-8"},
      {"empty OU", [](auto& t) { t.subject = {{NameAttribute::kOrganizationalUnit, ""}}; },
       "subject OU is empty"},
      {"serialNumber charset",
       [](auto& t) { t.subject = {{NameAttribute::kSerialNumber, "a*b"}}; },
       "subject serialNumber \"a*b\" has characters outside PrintableString"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    CertificateTemplate tmpl = LeafTemplate();
    c.edit(tmpl);
    EXPECT_STATUS(ca().issuer().IssueDer(tmpl, leaf_spki()), StatusCode::kInvalidArgument,
                  c.message);
    EXPECT_STATUS(SelfSign(tmpl, ca().key()), StatusCode::kInvalidArgument, c.message);
  }
}

TEST_F(IssuerTest, RefusesBadSubjectKeys) {
  std::string spki = leaf_spki();
  // The SPKI of a 1024-bit RSA key, extracted with OpenSSL.
  ASSERT_OK_AND_ASSIGN(std::vector<PemBlock> rsa_blocks, ParsePem(Fixture("rsa1024_pkcs8.pem")));
  ASSERT_EQ(rsa_blocks.size(), 1u);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(rsa_blocks[0].der.data());
  EVP_PKEY* rsa = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(rsa_blocks[0].der.size()));
  ASSERT_NE(rsa, nullptr);
  unsigned char* buf = nullptr;
  int len = i2d_PUBKEY(rsa, &buf);
  std::string rsa1024_spki(reinterpret_cast<char*>(buf), len);
  OPENSSL_free(buf);
  EVP_PKEY_free(rsa);
  struct Case {
    const char* name;
    std::string spki;
    const char* message;
  };
  std::string unused_bits = spki;
  unused_bits[spki.size() - 66] = 1;  // the BIT STRING's unused-bits octet
  const Case cases[] = {
      {"empty", "", "malformed SubjectPublicKeyInfo: not a DER SEQUENCE"},
      {"garbage", "garbage", "not a DER SEQUENCE"},
      {"trailing", spki + "x", "trailing bytes after the SEQUENCE"},
      {"truncated", spki.substr(0, spki.size() - 1), "not a DER SEQUENCE"},
      {"unused bits", unused_bits, "subjectPublicKey has unused bits"},
      {"ed25519",
       der::Tlv(der::kSequence, der::Tlv(der::kSequence, der::Oid(S({0x2b, 0x65, 0x70}))) +
                                    der::BitString(std::string(32, 'k'))),
       "unsupported public key algorithm"},
      {"rsa 1024", rsa1024_spki, "RSA key of 1024 bits refused"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_STATUS(ca().issuer().IssueDer(LeafTemplate(), c.spki), StatusCode::kInvalidArgument,
                  c.message);
  }
}

TEST_F(IssuerTest, AcceptsRsaSubjectKeys) {
  ASSERT_OK_AND_ASSIGN(PrivateKey rsa, PrivateKey::FromPem(Fixture("rsa2048_pkcs1.pem")));
  ASSERT_OK_AND_ASSIGN(Certificate leaf,
                       ca().issuer().Issue(LeafTemplate(), rsa.public_key().spki_der()));
  EXPECT_EQ(leaf.public_key(), rsa.public_key());
  EXPECT_OK(VerifyChain({leaf}, {ca().cert()}, TestNow()).status());
}

TEST(CertificateIssuerCreate, RefusesMismatchedKeyAndNonCa) {
  Ca ca = Ca::Make(KeyType::kEcP256);
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(KeyType::kEcP256));
  EXPECT_STATUS(CertificateIssuer::Create(ca.cert(), other).status(),
                StatusCode::kInvalidArgument,
                "issuer key does not match the issuer certificate's public key");
  ASSERT_OK_AND_ASSIGN(PrivateKey leaf_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(Certificate leaf,
                       ca.issuer().Issue(LeafTemplate(), leaf_key.public_key().spki_der()));
  EXPECT_STATUS(CertificateIssuer::Create(leaf, leaf_key).status(), StatusCode::kInvalidArgument,
                "issuer certificate is not a CA");
}

TEST(CertificateIssuerCreate, IssuesUnderAnOpenSslMadeRoot) {
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> root,
                       Certificate::ParsePemChain(Fixture("openssl_root.pem")));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::FromPem(Fixture("ec_p256_sec1.pem")));
  ASSERT_OK_AND_ASSIGN(auto issuer, CertificateIssuer::Create(root[0], key));
  ASSERT_OK_AND_ASSIGN(PrivateKey leaf_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(Certificate leaf,
                       issuer->Issue(LeafTemplate(), leaf_key.public_key().spki_der()));
  EXPECT_EQ(leaf.authority_key_id(), root[0].subject_key_id());
  EXPECT_EQ(leaf.issuer(), "CN=Sigil Test Root,O=Sigil Test,C=US");
  EXPECT_OK(VerifyChain({leaf}, root, TestNow()).status());
}

TEST(CertificateIssuerCreate, IssuerWithoutSkiGetsTheSha1OfItsKey) {
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> root,
                       Certificate::ParsePemChain(Fixture("openssl_root_noski.pem")));
  ASSERT_TRUE(root[0].subject_key_id().empty());
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::FromPem(Fixture("ec_p256_sec1.pem")));
  ASSERT_OK_AND_ASSIGN(auto issuer, CertificateIssuer::Create(root[0], key));
  ASSERT_OK_AND_ASSIGN(PrivateKey leaf_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(Certificate leaf,
                       issuer->Issue(LeafTemplate(), leaf_key.public_key().spki_der()));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  ASSERT_EQ(X509_pubkey_digest(root[0].get(), EVP_sha1(), md, &md_len), 1);
  EXPECT_EQ(leaf.authority_key_id(), std::string(reinterpret_cast<char*>(md), md_len));
  EXPECT_OK(VerifyChain({leaf}, root, TestNow()).status());
}

struct AlgorithmCase {
  const char* name;
  KeyType type;
  int signature_nid;
};

class IssuerKeyTypeTest : public ::testing::TestWithParam<AlgorithmCase> {};

TEST_P(IssuerKeyTypeTest, SignatureAlgorithmFollowsTheIssuerKey) {
  Ca ca = Ca::Make(GetParam().type);
  ASSERT_OK_AND_ASSIGN(PrivateKey leaf_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(Certificate leaf,
                       ca.issuer().Issue(LeafTemplate(), leaf_key.public_key().spki_der()));
  for (const Certificate* c : {&ca.cert(), static_cast<const Certificate*>(&leaf)}) {
    auto x = OpenSslParse(c->der());
    EXPECT_EQ(X509_get_signature_nid(x.get()), GetParam().signature_nid);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> path, VerifyChain({leaf}, {ca.cert()}, TestNow()));
  EXPECT_EQ(path.size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(
    IssuerKeys, IssuerKeyTypeTest,
    ::testing::Values(AlgorithmCase{"p256", KeyType::kEcP256, NID_ecdsa_with_SHA256},
                      AlgorithmCase{"p384", KeyType::kEcP384, NID_ecdsa_with_SHA384},
                      AlgorithmCase{"rsa2048", KeyType::kRsa2048, NID_sha256WithRSAEncryption}),
    [](const ::testing::TestParamInfo<AlgorithmCase>& info) { return info.param.name; });

TEST(SelfSign, P521KeysSignWithSha512) {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521");
  ASSERT_NE(raw, nullptr);
  unsigned char* buf = nullptr;
  PKCS8_PRIV_KEY_INFO* p8 = EVP_PKEY2PKCS8(raw);
  int len = i2d_PKCS8_PRIV_KEY_INFO(p8, &buf);
  std::string der(reinterpret_cast<char*>(buf), len);
  OPENSSL_free(buf);
  PKCS8_PRIV_KEY_INFO_free(p8);
  EVP_PKEY_free(raw);
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::FromPkcs8Der(der));
  EXPECT_EQ(key.DefaultScheme(), SignatureScheme::kEcdsaSha512);
  ASSERT_OK_AND_ASSIGN(Certificate root, SelfSign(RootTemplate(), key));
  auto x = OpenSslParse(root.der());
  EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA512);
  EXPECT_OK(VerifyChain({root}, {root}, TestNow()).status());
}

TEST_F(IssuerTest, IssuesFromManyThreads) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> issued(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        absl::StatusOr<std::string> der = ca().issuer().IssueDer(
            LeafTemplate(TestNow(), absl::StrCat("spiffe://example.org/t", t, "/", i)),
            leaf_spki());
        if (der.ok()) {
          issued[t].push_back(*der);
        } else {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(issued[t].size(), 25u);
    for (int i = 0; i < 25; ++i) {
      ASSERT_OK_AND_ASSIGN(Certificate cert, Certificate::FromDer(issued[t][i]));
      EXPECT_EQ(cert.uri_sans()[0], absl::StrCat("spiffe://example.org/t", t, "/", i));
      EXPECT_OK(VerifyChain({cert}, {ca().cert()}, TestNow()).status());
    }
  }
}

TEST(RandomSerial, IsSixteenPositiveDistinctBytes) {
  std::string a = RandomSerial();
  std::string b = RandomSerial();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(static_cast<uint8_t>(a[0]) & 0x80, 0);
  EXPECT_EQ(static_cast<uint8_t>(b[0]) & 0x80, 0);
  EXPECT_NE(a, b);
  EXPECT_EQ(RandomBytes(0), "");
  EXPECT_EQ(RandomBytes(33).size(), 33u);
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
}

// An independent tool reads what we wrote: `openssl x509 -text` shows the
// extensions with their critical flags and `openssl verify` accepts the
// chain under X.509-strict rules.
class OpenSslCliTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(OpenSslCliTest, OpensslAcceptsIssuedLeafAndRoot) {
  if (testing::RunShell("openssl version").exit_code != 0) GTEST_SKIP() << "no openssl binary";
  Ca ca = Ca::Make(GetParam());
  ASSERT_OK_AND_ASSIGN(PrivateKey leaf_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(Certificate leaf,
                       ca.issuer().Issue(LeafTemplate(), leaf_key.public_key().spki_der()));
  CertificateTemplate bare = LeafTemplate(TestNow(), "spiffe://example.org/bare");
  bare.subject.clear();
  ASSERT_OK_AND_ASSIGN(Certificate bare_leaf,
                       ca.issuer().Issue(bare, leaf_key.public_key().spki_der()));
  testing::TempDir dir;
  std::string root_pem = dir.Write("root.pem", ca.cert().ToPem());
  std::string leaf_pem = dir.Write("leaf.pem", leaf.ToPem());
  std::string leaf_der = dir.Write("leaf.der", leaf.der());
  std::string bare_pem = dir.Write("bare.pem", bare_leaf.ToPem());

  auto [code, text] = testing::RunShell("openssl x509 -noout -text -inform DER -in " + leaf_der);
  ASSERT_EQ(code, 0) << text;
  for (const char* want : {"Version: 3 (0x2)",
                           "X509v3 Key Usage: critical",
                           "Digital Signature, Key Encipherment, Key Agreement",
                           "X509v3 Basic Constraints: critical",
                           "CA:FALSE",
                           "X509v3 Extended Key Usage: \n",
                           "TLS Web Server Authentication, TLS Web Client Authentication",
                           "X509v3 Subject Alternative Name: \n",
                           "URI:spiffe://example.org/workload",
                           "X509v3 Subject Key Identifier:",
                           "X509v3 Authority Key Identifier:",
                           "Subject: C = US, O = SPIRE",
                           "Issuer: C = US, O = SPIFFE"}) {
    EXPECT_TRUE(absl::StrContains(text, want)) << "missing \"" << want << "\" in\n" << text;
  }
  auto [root_code, root_text] = testing::RunShell("openssl x509 -noout -text -in " + root_pem);
  ASSERT_EQ(root_code, 0) << root_text;
  EXPECT_TRUE(absl::StrContains(root_text, "CA:TRUE")) << root_text;
  EXPECT_TRUE(absl::StrContains(root_text, "Certificate Sign, CRL Sign")) << root_text;

  auto [bare_code, bare_text] = testing::RunShell("openssl x509 -noout -text -in " + bare_pem);
  ASSERT_EQ(bare_code, 0) << bare_text;
  EXPECT_TRUE(absl::StrContains(bare_text, "X509v3 Subject Alternative Name: critical"))
      << bare_text;

  std::string at = std::to_string(absl::ToUnixSeconds(TestNow()));
  for (const std::string& cert : {leaf_pem, bare_pem}) {
    testing::ShellResult verify = testing::RunShell("openssl verify -x509_strict -attime " + at +
                                                    " -CAfile " + root_pem + " " + cert);
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    EXPECT_TRUE(absl::StrContains(verify.output, ": OK")) << verify.output;
  }
  // And it really checks: a day after expiry the same command fails.
  std::string late = std::to_string(absl::ToUnixSeconds(TestNow() + absl::Hours(24)));
  testing::ShellResult expired =
      testing::RunShell("openssl verify -attime " + late + " -CAfile " + root_pem + " " + leaf_pem);
  EXPECT_NE(expired.exit_code, 0) << expired.output;
  EXPECT_TRUE(absl::StrContains(expired.output, "certificate has expired")) << expired.output;
}

INSTANTIATE_TEST_SUITE_P(IssuerKeys, OpenSslCliTest,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048),
                         [](const ::testing::TestParamInfo<KeyType>& info) {
                           std::string name = KeyTypeName(info.param);
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace sigil::crypto
