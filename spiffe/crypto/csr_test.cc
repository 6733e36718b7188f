#include "spiffe/crypto/csr.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spiffe/crypto/der.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/test_util.h"

namespace sigil::crypto {
namespace {

using absl::StatusCode;
using testing::TestNow;

// A CSR made by OpenSSL's own X509_REQ code, independent of CreateCsrDer.
std::string OpenSslCsr(const PrivateKey& key, const std::vector<std::string>& uris,
                       const EVP_MD* md) {
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_version(req, 0);
  X509_NAME* name = X509_REQ_get_subject_name(req);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("SPIRE"), -1, -1, 0);
  X509_REQ_set_pubkey(req, key.public_key().get());
  if (!uris.empty()) {
    GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
    for (const std::string& uri : uris) {
      GENERAL_NAME* gn = GENERAL_NAME_new();
      ASN1_IA5STRING* s = ASN1_IA5STRING_new();
      ASN1_STRING_set(s, uri.data(), static_cast<int>(uri.size()));
      GENERAL_NAME_set0_value(gn, GEN_URI, s);
      sk_GENERAL_NAME_push(names, gn);
    }
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    X509V3_add1_i2d(&exts, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT);
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(names);
  }
  EXPECT_GT(X509_REQ_sign(req, key.get(), md), 0);
  unsigned char* buf = nullptr;
  int len = i2d_X509_REQ(req, &buf);
  std::string der(reinterpret_cast<char*>(buf), len);
  OPENSSL_free(buf);
  X509_REQ_free(req);
  return der;
}

class CsrTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(CsrTest, OpenSslAcceptsOurCsr) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam()));
  ASSERT_OK_AND_ASSIGN(std::string der,
                       CreateCsrDer(key, {{NameAttribute::kCountry, "US"}},
                                    {"spiffe://example.org/a", "spiffe://example.org/b"}));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(p, reinterpret_cast<const unsigned char*>(der.data()) + der.size());
  EXPECT_EQ(X509_REQ_verify(req, key.public_key().get()), 1);
  EXPECT_EQ(X509_REQ_get_version(req), 0);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  ASSERT_NE(exts, nullptr);
  ASSERT_EQ(sk_X509_EXTENSION_num(exts), 1);
  GENERAL_NAMES* names =
      static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(names, nullptr);
  EXPECT_EQ(sk_GENERAL_NAME_num(names), 2);
  GENERAL_NAMES_free(names);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);
}

TEST_P(CsrTest, FromDerReadsOurCsr) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam()));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsrDer(key, {}, {"spiffe://example.org/w"}));
  ASSERT_OK_AND_ASSIGN(CertificateRequest csr, CertificateRequest::FromDer(der));
  EXPECT_EQ(csr.spki_der(), key.public_key().spki_der());
  EXPECT_EQ(csr.uri_sans(), std::vector<std::string>{"spiffe://example.org/w"});
  EXPECT_TRUE(csr.dns_sans().empty());
}

TEST_P(CsrTest, FromDerReadsRequestedDnsNames) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam()));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsrDer(key, {}, {"spiffe://example.org/w"},
                                                     {"web.example.org", "*.web.example.org"}));
  ASSERT_OK_AND_ASSIGN(CertificateRequest csr, CertificateRequest::FromDer(der));
  EXPECT_EQ(csr.uri_sans(), std::vector<std::string>{"spiffe://example.org/w"});
  EXPECT_EQ(csr.dns_sans(), (std::vector<std::string>{"web.example.org", "*.web.example.org"}));
}

TEST_P(CsrTest, FromDerReadsOpenSslCsrs) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam()));
  for (const EVP_MD* md : {EVP_sha256(), EVP_sha384(), EVP_sha512()}) {
    SCOPED_TRACE(EVP_MD_get0_name(md));
    std::string der = OpenSslCsr(key, {"spiffe://example.org/x"}, md);
    ASSERT_OK_AND_ASSIGN(CertificateRequest csr, CertificateRequest::FromDer(der));
    EXPECT_EQ(csr.spki_der(), key.public_key().spki_der());
    EXPECT_EQ(csr.uri_sans(), std::vector<std::string>{"spiffe://example.org/x"});
  }
  // No extensions at all.
  ASSERT_OK_AND_ASSIGN(CertificateRequest bare,
                       CertificateRequest::FromDer(OpenSslCsr(key, {}, EVP_sha256())));
  EXPECT_TRUE(bare.uri_sans().empty());
}

TEST_P(CsrTest, IssuedFromCsrVerifies) {
  ASSERT_OK_AND_ASSIGN(PrivateKey ca_key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(Certificate root, SelfSign(testing::RootTemplate(), ca_key));
  ASSERT_OK_AND_ASSIGN(auto issuer, CertificateIssuer::Create(root, ca_key));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam()));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsrDer(key, {}, {}));
  ASSERT_OK_AND_ASSIGN(CertificateRequest csr, CertificateRequest::FromDer(der));
  ASSERT_OK_AND_ASSIGN(Certificate leaf, issuer->Issue(testing::LeafTemplate(), csr.spki_der()));
  EXPECT_EQ(leaf.public_key(), key.public_key());
  EXPECT_OK(VerifyChain({leaf}, {root}, TestNow()).status());
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, CsrTest,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048),
                         [](const ::testing::TestParamInfo<KeyType>& info) {
                           std::string name = KeyTypeName(info.param);
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(CsrCli, OpensslReqVerifiesOurCsr) {
  if (testing::RunShell("openssl version").exit_code != 0) GTEST_SKIP() << "no openssl binary";
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der,
                       CreateCsrDer(key, {{NameAttribute::kOrganization, "SPIRE"}},
                                    {"spiffe://example.org/cli"}));
  testing::TempDir dir;
  std::string path = dir.Write("req.pem", EncodePem("CERTIFICATE REQUEST", der));
  auto [code, out] = testing::RunShell("openssl req -noout -text -verify -in " + path);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "self-signature verify OK") ||
              absl::StrContains(out, "Certificate request self-signature ok"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "URI:spiffe://example.org/cli")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Subject: O = SPIRE")) << out;
}

TEST(CertificateRequest, RefusesTamperedCsrs) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsrDer(key, {{NameAttribute::kOrganization, "SPIRE"}},
                                                     {"spiffe://example.org/w"}));
  std::string changed_name = der;
  size_t at = changed_name.find("SPIRE");
  ASSERT_NE(at, std::string::npos);
  changed_name[at] = 'X';
  EXPECT_STATUS(CertificateRequest::FromDer(changed_name), StatusCode::kInvalidArgument,
                "CSR signature is invalid");
  std::string changed_sig = der;
  changed_sig[changed_sig.size() - 3] ^= 0x01;
  EXPECT_STATUS(CertificateRequest::FromDer(changed_sig), StatusCode::kInvalidArgument,
                "CSR signature is invalid");
  // A valid CSR whose key is swapped for another: the signature no longer fits.
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(KeyType::kEcP256));
  std::string swapped = der;
  const std::string& mine = key.public_key().spki_der();
  swapped.replace(swapped.find(mine), mine.size(), other.public_key().spki_der());
  EXPECT_STATUS(CertificateRequest::FromDer(swapped), StatusCode::kInvalidArgument,
                "CSR signature is invalid");
}

TEST(CertificateRequest, RefusesMalformedCsrs) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(std::string der, CreateCsrDer(key, {}, {"spiffe://example.org/w"}));
  // Take the CSR apart to rebuild variants.
  der::Reader outer(der);
  absl::string_view body;
  ASSERT_TRUE(outer.ExpectContents(der::kSequence, &body));
  der::Reader parts(body);
  der::Element info, alg, sig;
  ASSERT_TRUE(parts.Next(&info) && parts.Next(&alg) && parts.Next(&sig));
  auto csr = [](absl::string_view i, absl::string_view a, absl::string_view s) {
    return der::Tlv(der::kSequence, absl::StrCat(i, a, s));
  };
  der::Reader info_reader(info.contents);
  der::Element version, subject, spki, attrs;
  ASSERT_TRUE(info_reader.Next(&version) && info_reader.Next(&subject) &&
              info_reader.Next(&spki) && info_reader.Next(&attrs));
  std::string v2_info = der::Tlv(
      der::kSequence, absl::StrCat(der::SmallInteger(1), subject.encoding, spki.encoding,
                                   attrs.encoding));
  std::string rsa_alg = der::Tlv(
      der::kSequence, der::Oid(der::oid::kSha256WithRsa) + der::Tlv(der::kNull, ""));
  std::string pss_alg = der::Tlv(
      der::kSequence, der::Oid("\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a"));  // RSASSA-PSS
  std::string ecdsa_with_params =
      der::Tlv(der::kSequence, der::Oid(der::oid::kEcdsaWithSha256) + der::Tlv(der::kNull, ""));
  std::string sig_with_unused_bits(sig.encoding);
  sig_with_unused_bits[2] = 1;
  struct Case {
    const char* name;
    std::string der;
    const char* message;
  };
  const Case cases[] = {
      {"empty", "", "malformed CSR: not a DER SEQUENCE"},
      {"garbage", "garbage", "malformed CSR: not a DER SEQUENCE"},
      {"trailing bytes", der + "x", "malformed CSR: trailing bytes after the request"},
      {"truncated", der.substr(0, der.size() - 1), "malformed CSR: not a DER SEQUENCE"},
      {"missing signature", csr(info.encoding, alg.encoding, ""),
       "expected SEQUENCE { info, algorithm, signature }"},
      {"version 2", csr(v2_info, alg.encoding, sig.encoding), "version must be v1 (0)"},
      {"signature algorithm for another key", csr(info.encoding, rsa_alg, sig.encoding),
       "signature algorithm does not fit the public key"},
      {"unsupported algorithm", csr(info.encoding, pss_alg, sig.encoding),
       "unsupported signature algorithm"},
      {"ECDSA with parameters", csr(info.encoding, ecdsa_with_params, sig.encoding),
       "unexpected signature algorithm parameters"},
      {"unused signature bits", csr(info.encoding, alg.encoding, sig_with_unused_bits),
       "signature BIT STRING has unused bits"},
      {"bad key",
       csr(der::Tlv(der::kSequence,
                    absl::StrCat(version.encoding, subject.encoding,
                                 der::Tlv(der::kSequence, "junk"), attrs.encoding)),
           alg.encoding, sig.encoding),
       "malformed CSR: malformed SubjectPublicKeyInfo"},
      {"bad attributes",
       csr(der::Tlv(der::kSequence, absl::StrCat(version.encoding, subject.encoding, spki.encoding,
                                                 der::Tlv(der::kSet, ""))),
           alg.encoding, sig.encoding),
       "malformed CSR: bad attributes"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_STATUS(CertificateRequest::FromDer(c.der), StatusCode::kInvalidArgument, c.message);
  }
}

TEST(CreateCsrDer, RefusesBadNamesAndSans) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  EXPECT_STATUS(CreateCsrDer(key, {}, {"spiffe://example.org/\xff"}),
                StatusCode::kInvalidArgument, "is not an IA5String");
  EXPECT_STATUS(CreateCsrDer(key, {}, {""}), StatusCode::kInvalidArgument, "URI SAN is empty");
  EXPECT_STATUS(CreateCsrDer(key, {{NameAttribute::kCountry, "USA"}}, {}),
                StatusCode::kInvalidArgument, "two-letter country code");
}

}  // namespace
}  // namespace sigil::crypto
