#include "spiffe/crypto/x509_builder.h"

#include <cstdlib>
#include <iostream>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "spiffe/crypto/der.h"
#include "spiffe/crypto/openssl_util.h"
#include "spiffe/crypto/x509_internal.h"

namespace sigil::crypto {

using internal::Bytes;

namespace internal {
namespace {

// Returns the number of code points, or -1 when `s` is not valid UTF-8
// (overlong forms, surrogates and values above U+10FFFF included).
int Utf8Length(absl::string_view s) {
  int count = 0;
  const auto* p = Bytes(s);
  size_t i = 0, n = s.size();
  while (i < n) {
    uint8_t c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return -1;
    }
    if (i + len > n) return -1;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return -1;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    i += len;
    ++count;
  }
  return count;
}

bool IsPrintableString(absl::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              absl::string_view(" '()+,-./:=?").find(c) != absl::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

struct AttributeRule {
  const char* name;
  absl::string_view oid;
  bool printable;
  int max_length;
};

AttributeRule RuleFor(NameAttribute a) {
  switch (a) {
    case NameAttribute::kCountry:
      return {"C", der::oid::kCountry, true, 2};
    case NameAttribute::kOrganization:
      return {"O", der::oid::kOrganization, false, 64};
    case NameAttribute::kOrganizationalUnit:
      return {"OU", der::oid::kOrganizationalUnit, false, 64};
    case NameAttribute::kCommonName:
      return {"CN", der::oid::kCommonName, false, 64};
    case NameAttribute::kSerialNumber:
      return {"serialNumber", der::oid::kSerialNumber, true, 64};
  }
  return {"?", "", false, 0};
}

absl::Status ValidateIa5(absl::string_view what, absl::string_view s) {
  if (s.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " SAN is empty"));
  for (char c : s) {
    if (static_cast<uint8_t>(c) > 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " SAN \"", s, "\" is not an IA5String (ASCII only)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EncodeName(const DistinguishedName& name) {
  std::string rdns;
  for (const auto& [attribute, value] : name) {
    AttributeRule rule = RuleFor(attribute);
    if (rule.oid.empty()) return absl::InvalidArgumentError("unknown name attribute");
    if (value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("subject ", rule.name, " is empty"));
    }
    int length;
    if (rule.printable) {
      if (!IsPrintableString(value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "subject ", rule.name, " \"", value, "\" has characters outside PrintableString"));
      }
      length = static_cast<int>(value.size());
    } else {
      length = Utf8Length(value);
      if (length < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("subject ", rule.name, " is not valid UTF-8"));
      }
    }
    if (attribute == NameAttribute::kCountry && length != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("subject C \"", value, "\" must be a two-letter country code"));
    }
    if (length > rule.max_length) {
      return absl::InvalidArgumentError(absl::StrCat("subject ", rule.name, " is longer than ",
                                                     rule.max_length, " characters"));
    }
    std::string atv = der::Oid(rule.oid);
    der::AppendTlv(&atv, rule.printable ? der::kPrintableString : der::kUtf8String, value);
    der::AppendTlv(&rdns, der::kSet, der::Tlv(der::kSequence, atv));
  }
  return der::Tlv(der::kSequence, rdns);
}

absl::StatusOr<std::string> SubjectAltNameValue(const std::vector<std::string>& uris,
                                                const std::vector<std::string>& dns) {
  std::string names;
  for (const std::string& uri : uris) {
    SIGIL_RETURN_IF_ERROR(ValidateIa5("URI", uri));
    der::AppendTlv(&names, der::ContextPrimitive(6), uri);  // uniformResourceIdentifier
  }
  for (const std::string& name : dns) {
    SIGIL_RETURN_IF_ERROR(ValidateIa5("DNS", name));
    der::AppendTlv(&names, der::ContextPrimitive(2), name);  // dNSName
  }
  return der::Tlv(der::kSequence, names);
}

std::string Extension(absl::string_view oid, bool critical, absl::string_view value_der) {
  std::string ext = der::Oid(oid);
  if (critical) ext.append("\x01\x01\xff", 3);
  der::AppendTlv(&ext, der::kOctetString, value_der);
  return der::Tlv(der::kSequence, ext);
}

namespace {

// Starts a signing operation of `key` over `md` on `ctx`.
bool InitSigning(EVP_MD_CTX* ctx, const PrivateKey& key, const EVP_MD* md) {
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit(ctx, &pctx, md, nullptr, key.get()) != 1) return false;
  return key.algorithm() != KeyAlgorithm::kRsa ||
         EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
}

}  // namespace

SignatureAlgorithm SignatureAlgorithmFor(const PrivateKey& key, bool prepare) {
  SignatureAlgorithm alg;
  switch (key.DefaultScheme()) {
    case SignatureScheme::kEcdsaSha384:
      alg.algorithm_identifier_der = der::Tlv(der::kSequence, der::Oid(der::oid::kEcdsaWithSha384));
      alg.md = EVP_sha384();
      break;
    case SignatureScheme::kEcdsaSha512:
      alg.algorithm_identifier_der = der::Tlv(der::kSequence, der::Oid(der::oid::kEcdsaWithSha512));
      alg.md = EVP_sha512();
      break;
    case SignatureScheme::kRsaPkcs1Sha256:
      // RFC 4055 §5: the parameters of sha*WithRSAEncryption are NULL.
      alg.algorithm_identifier_der = der::Tlv(
          der::kSequence, absl::StrCat(der::Oid(der::oid::kSha256WithRsa), der::Tlv(der::kNull, "")));
      alg.md = EVP_sha256();
      break;
    default:
      alg.algorithm_identifier_der = der::Tlv(der::kSequence, der::Oid(der::oid::kEcdsaWithSha256));
      alg.md = EVP_sha256();
      break;
  }
  if (prepare) {
    alg.ready.reset(EVP_MD_CTX_new());
    if (alg.ready != nullptr && !InitSigning(alg.ready.get(), key, alg.md)) {
      DrainOpenSslErrors();
      alg.ready.reset();  // SignAndWrap falls back to a fresh init
    }
  }
  return alg;
}

absl::StatusOr<std::string> SignAndWrap(const PrivateKey& key, const SignatureAlgorithm& alg,
                                        absl::string_view tbs) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  bool ready = ctx != nullptr &&
               (alg.ready != nullptr ? EVP_MD_CTX_copy_ex(ctx.get(), alg.ready.get()) == 1
                                     : InitSigning(ctx.get(), key, alg.md));
  if (!ready) return absl::InternalError(WithOpenSslErrors("signing setup failed"));
  // The signature goes straight into its BIT STRING slot of the output.
  size_t max_sig = static_cast<size_t>(EVP_PKEY_get_size(key.get()));
  std::string body;
  body.reserve(tbs.size() + alg.algorithm_identifier_der.size() + max_sig + 16);
  body.append(tbs.data(), tbs.size());
  body += alg.algorithm_identifier_der;
  std::string sig(max_sig + 1, '\0');  // unused-bits octet, then the signature
  size_t sig_len = max_sig;
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()) + 1, &sig_len,
                     Bytes(tbs), tbs.size()) != 1) {
    return absl::InternalError(WithOpenSslErrors("signing failed"));
  }
  sig.resize(sig_len + 1);
  der::AppendTlv(&body, der::kBitString, sig);
  return der::Tlv(der::kSequence, body);
}

}  // namespace internal

namespace {

// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
absl::StatusOr<std::string> EncodeTime(absl::Time t, absl::string_view what) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is infinite"));
  }
  absl::CivilSecond cs = absl::ToCivilSecond(t, absl::UTCTimeZone());
  if (cs.year() < 1950 || cs.year() > 9999) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " year ", cs.year(), " is outside 1950..9999"));
  }
  if (cs.year() < 2050) {
    return der::Tlv(der::kUtcTime,
                    absl::StrFormat("%02d%02d%02d%02d%02d%02dZ", cs.year() % 100, cs.month(),
                                    cs.day(), cs.hour(), cs.minute(), cs.second()));
  }
  return der::Tlv(der::kGeneralizedTime,
                  absl::StrFormat("%04d%02d%02d%02d%02d%02dZ", cs.year(), cs.month(), cs.day(),
                                  cs.hour(), cs.minute(), cs.second()));
}

// RFC 5280 §4.2.1.3: a named bit list, so DER drops trailing zero bits.
std::string KeyUsageValue(uint32_t usage) {
  uint8_t byte = 0;
  for (int bit = 0; bit < 7; ++bit) {
    if (usage & (1u << bit)) byte |= static_cast<uint8_t>(0x80 >> bit);
  }
  int unused = 0;
  while (unused < 7 && (byte & (1u << unused)) == 0) ++unused;
  return der::BitString(absl::string_view(reinterpret_cast<const char*>(&byte), 1), unused);
}

std::string AuthorityKeyIdExtension(absl::string_view key_id) {
  // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
  return internal::Extension(
      der::oid::kAuthorityKeyIdentifier, false,
      der::Tlv(der::kSequence, der::Tlv(der::ContextPrimitive(0), key_id)));
}

std::string Sha1(absl::string_view data) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(Bytes(data), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

absl::Status ValidateTemplate(const CertificateTemplate& tmpl) {
  if (tmpl.serial.empty()) return absl::InvalidArgumentError("template: serial is empty");
  absl::string_view serial = tmpl.serial;
  while (!serial.empty() && serial.front() == '\0') serial.remove_prefix(1);
  if (serial.empty()) return absl::InvalidArgumentError("template: serial must be positive");
  size_t encoded = serial.size() + ((static_cast<uint8_t>(serial.front()) & 0x80) ? 1 : 0);
  if (encoded > 20) {
    return absl::InvalidArgumentError(absl::StrCat(
        "template: serial is ", encoded, " octets once DER-encoded; RFC 5280 §4.1.2.2 allows 20"));
  }
  if (!(tmpl.not_after > tmpl.not_before)) {
    return absl::InvalidArgumentError("template: not_after must be later than not_before");
  }
  if (!tmpl.is_ca && tmpl.path_len >= 0) {
    return absl::InvalidArgumentError("template: path_len is only allowed with is_ca");
  }
  if ((tmpl.key_usage & ~uint32_t{0x7f}) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("template: unknown key usage bits 0x%x", tmpl.key_usage & ~0x7fu));
  }
  if (tmpl.subject.empty() && tmpl.uri_sans.empty() && tmpl.dns_sans.empty()) {
    // RFC 5280 §4.1.2.6: an empty subject needs a subjectAltName.
    return absl::InvalidArgumentError("template: subject and SANs are both empty");
  }
  return absl::OkStatus();
}

// Everything of a certificate except what comes from the issuer.
struct IssuerParts {
  absl::string_view name_der;
  absl::string_view aki_extension;
  const internal::SignatureAlgorithm* alg;
  const PrivateKey* key;
};

absl::StatusOr<std::string> BuildCertificate(const CertificateTemplate& tmpl,
                                             absl::string_view subject_name_der,
                                             absl::string_view spki_der,
                                             absl::string_view subject_key_id,
                                             const IssuerParts& issuer) {
  SIGIL_ASSIGN_OR_RETURN(std::string not_before, EncodeTime(tmpl.not_before, "not_before"));
  SIGIL_ASSIGN_OR_RETURN(std::string not_after, EncodeTime(tmpl.not_after, "not_after"));

  std::string exts;
  exts.reserve(256);
  if (tmpl.key_usage != 0) {
    exts += internal::Extension(der::oid::kKeyUsage, true, KeyUsageValue(tmpl.key_usage));
  }
  if (!tmpl.ext_key_usage.empty()) {
    std::string oids;
    for (ExtKeyUsage eku : tmpl.ext_key_usage) {
      oids += der::Oid(eku == ExtKeyUsage::kServerAuth ? der::oid::kServerAuth
                                                       : der::oid::kClientAuth);
    }
    exts += internal::Extension(der::oid::kExtKeyUsage, false, der::Tlv(der::kSequence, oids));
  }
  std::string bc;
  if (tmpl.is_ca) {
    bc.append("\x01\x01\xff", 3);
    if (tmpl.path_len >= 0) bc += der::SmallInteger(static_cast<uint32_t>(tmpl.path_len));
  }
  exts += internal::Extension(der::oid::kBasicConstraints, true, der::Tlv(der::kSequence, bc));
  exts += internal::Extension(der::oid::kSubjectKeyIdentifier, false,
                              der::Tlv(der::kOctetString, subject_key_id));
  exts.append(issuer.aki_extension.data(), issuer.aki_extension.size());
  if (!tmpl.uri_sans.empty() || !tmpl.dns_sans.empty()) {
    SIGIL_ASSIGN_OR_RETURN(std::string san,
                           internal::SubjectAltNameValue(tmpl.uri_sans, tmpl.dns_sans));
    exts += internal::Extension(der::oid::kSubjectAltName, tmpl.subject.empty(), san);
  }

  std::string tbs;
  tbs.reserve(512 + spki_der.size() + exts.size());
  tbs.append("\xa0\x03\x02\x01\x02", 5);  // [0] EXPLICIT version v3 (2)
  tbs += der::UnsignedInteger(tmpl.serial);
  tbs += issuer.alg->algorithm_identifier_der;
  tbs.append(issuer.name_der.data(), issuer.name_der.size());
  der::AppendTlv(&tbs, der::kSequence, absl::StrCat(not_before, not_after));
  tbs.append(subject_name_der.data(), subject_name_der.size());
  tbs.append(spki_der.data(), spki_der.size());
  der::AppendTlv(&tbs, der::ContextConstructed(3), der::Tlv(der::kSequence, exts));
  return internal::SignAndWrap(*issuer.key, *issuer.alg,
                               der::Tlv(der::kSequence, tbs));
}

// The subject Name of a DER certificate, exactly as encoded.
absl::StatusOr<absl::string_view> SubjectNameDer(absl::string_view cert_der) {
  absl::string_view cert_seq, tbs;
  der::Reader outer(cert_der);
  if (!outer.ExpectContents(der::kSequence, &cert_seq)) {
    return absl::InvalidArgumentError("issuer certificate is malformed");
  }
  der::Reader c(cert_seq);
  if (!c.ExpectContents(der::kSequence, &tbs)) {
    return absl::InvalidArgumentError("issuer certificate is malformed");
  }
  der::Reader t(tbs);
  der::Element e;
  if (t.PeekTag(der::ContextConstructed(0)) && !t.Next(&e)) {
    return absl::InvalidArgumentError("issuer certificate is malformed");
  }
  // serialNumber, signature, issuer, validity, then subject.
  if (!t.Expect(der::kInteger, &e) || !t.Expect(der::kSequence, &e) ||
      !t.Expect(der::kSequence, &e) || !t.Expect(der::kSequence, &e) ||
      !t.Expect(der::kSequence, &e)) {
    return absl::InvalidArgumentError("issuer certificate is malformed");
  }
  return e.encoding;
}

}  // namespace

CertificateIssuer::CertificateIssuer(std::string issuer_name_der, std::string issuer_ski,
                                     PrivateKey issuer_key)
    : issuer_name_der_(std::move(issuer_name_der)),
      issuer_ski_(std::move(issuer_ski)),
      issuer_key_(std::move(issuer_key)),
      signature_algorithm_(std::make_unique<internal::SignatureAlgorithm>(
          internal::SignatureAlgorithmFor(issuer_key_, /*prepare=*/true))),
      aki_extension_(AuthorityKeyIdExtension(issuer_ski_)) {}

CertificateIssuer::~CertificateIssuer() = default;

absl::StatusOr<std::unique_ptr<CertificateIssuer>> CertificateIssuer::Create(
    const Certificate& issuer, const PrivateKey& issuer_key) {
  if (EVP_PKEY_eq(issuer.public_key().get(), issuer_key.public_key().get()) != 1) {
    internal::DrainOpenSslErrors();
    return absl::InvalidArgumentError(
        "issuer key does not match the issuer certificate's public key");
  }
  if (!issuer.is_ca()) {
    return absl::InvalidArgumentError(
        "issuer certificate is not a CA (basicConstraints cA is not true)");
  }
  SIGIL_ASSIGN_OR_RETURN(absl::string_view name, SubjectNameDer(issuer.der()));
  std::string ski = issuer.subject_key_id();
  if (ski.empty()) {
    SIGIL_ASSIGN_OR_RETURN(der::SpkiInfo info, der::ParseSpki(issuer_key.public_key().spki_der()));
    ski = Sha1(info.key_bits);
  }
  return std::unique_ptr<CertificateIssuer>(
      new CertificateIssuer(std::string(name), std::move(ski), issuer_key));
}

absl::StatusOr<std::string> CertificateIssuer::IssueDer(const CertificateTemplate& tmpl,
                                                        absl::string_view subject_spki_der) const {
  SIGIL_RETURN_IF_ERROR(ValidateTemplate(tmpl));
  SIGIL_ASSIGN_OR_RETURN(der::SpkiInfo spki, der::ParseSpki(subject_spki_der));
  SIGIL_ASSIGN_OR_RETURN(std::string subject, internal::EncodeName(tmpl.subject));
  IssuerParts parts{issuer_name_der_, aki_extension_, signature_algorithm_.get(), &issuer_key_};
  return BuildCertificate(tmpl, subject, subject_spki_der, Sha1(spki.key_bits), parts);
}

absl::StatusOr<Certificate> CertificateIssuer::Issue(const CertificateTemplate& tmpl,
                                                     absl::string_view subject_spki_der) const {
  SIGIL_ASSIGN_OR_RETURN(std::string der, IssueDer(tmpl, subject_spki_der));
  return Certificate::FromDer(der);
}

absl::StatusOr<Certificate> SelfSign(const CertificateTemplate& tmpl, const PrivateKey& key) {
  SIGIL_RETURN_IF_ERROR(ValidateTemplate(tmpl));
  const std::string& spki_der = key.public_key().spki_der();
  SIGIL_ASSIGN_OR_RETURN(der::SpkiInfo spki, der::ParseSpki(spki_der));
  SIGIL_ASSIGN_OR_RETURN(std::string subject, internal::EncodeName(tmpl.subject));
  std::string ski = Sha1(spki.key_bits);
  std::string aki = AuthorityKeyIdExtension(ski);
  internal::SignatureAlgorithm alg = internal::SignatureAlgorithmFor(key);
  IssuerParts parts{subject, aki, &alg, &key};
  SIGIL_ASSIGN_OR_RETURN(std::string der, BuildCertificate(tmpl, subject, spki_der, ski, parts));
  return Certificate::FromDer(der);
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::cerr << "sigil::crypto: the system random number generator failed: "
              << internal::DrainOpenSslErrors() << std::endl;
    std::abort();
  }
  return out;
}

std::string RandomSerial() {
  for (;;) {
    std::string serial = RandomBytes(16);
    serial[0] = static_cast<char>(serial[0] & 0x7f);
    if (serial.find_first_not_of('\0') != std::string::npos) return serial;
  }
}

}  // namespace sigil::crypto
