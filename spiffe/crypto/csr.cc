#include "spiffe/crypto/csr.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spiffe/crypto/der.h"
#include "spiffe/crypto/openssl_util.h"
#include "spiffe/crypto/x509_internal.h"

namespace sigil::crypto {

using internal::Bytes;

namespace {

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed CSR: ", why));
}

// The URIs of a subjectAltName extnValue (a GeneralNames SEQUENCE).
absl::Status CollectSans(absl::string_view value, std::vector<std::string>* uris,
                         std::vector<std::string>* dns) {
  der::Reader outer(value);
  absl::string_view names;
  if (!outer.ExpectContents(der::kSequence, &names) || !outer.empty()) {
    return Malformed("bad subjectAltName");
  }
  der::Reader r(names);
  while (!r.empty()) {
    der::Element name;
    if (!r.Next(&name)) return Malformed("bad subjectAltName entry");
    if (name.tag == der::ContextPrimitive(6)) uris->emplace_back(name.contents);
    if (name.tag == der::ContextPrimitive(2)) dns->emplace_back(name.contents);
  }
  return absl::OkStatus();
}

// Walks the attributes of a CertificationRequestInfo looking for the
// PKCS#9 extensionRequest and its subjectAltName.
absl::Status CollectRequestedSans(absl::string_view attributes, std::vector<std::string>* uris,
                                  std::vector<std::string>* dns) {
  der::Reader attrs(attributes);
  while (!attrs.empty()) {
    absl::string_view attr, type, values;
    if (!attrs.ExpectContents(der::kSequence, &attr)) return Malformed("bad attribute");
    der::Reader a(attr);
    if (!a.ExpectContents(der::kOid, &type) || !a.ExpectContents(der::kSet, &values) ||
        !a.empty()) {
      return Malformed("bad attribute");
    }
    if (type != der::oid::kExtensionRequest) continue;
    der::Reader v(values);
    while (!v.empty()) {
      absl::string_view extensions;
      if (!v.ExpectContents(der::kSequence, &extensions)) return Malformed("bad extensionRequest");
      der::Reader exts(extensions);
      while (!exts.empty()) {
        absl::string_view ext, oid, value;
        if (!exts.ExpectContents(der::kSequence, &ext)) return Malformed("bad extension");
        der::Reader e(ext);
        if (!e.ExpectContents(der::kOid, &oid)) return Malformed("bad extension");
        if (e.PeekTag(der::kBoolean)) {
          der::Element critical;
          e.Next(&critical);
        }
        if (!e.ExpectContents(der::kOctetString, &value) || !e.empty()) {
          return Malformed("bad extension");
        }
        if (oid == der::oid::kSubjectAltName) SIGIL_RETURN_IF_ERROR(CollectSans(value, uris, dns));
      }
    }
  }
  return absl::OkStatus();
}

struct CsrSignatureAlgorithm {
  KeyAlgorithm key_algorithm;
  const EVP_MD* md;
};

absl::StatusOr<CsrSignatureAlgorithm> ParseSignatureAlgorithm(absl::string_view alg_id) {
  der::Reader r(alg_id);
  absl::string_view oid;
  if (!r.ExpectContents(der::kOid, &oid)) return Malformed("bad signature algorithm");
  CsrSignatureAlgorithm out{KeyAlgorithm::kOther, nullptr};
  if (oid == der::oid::kEcdsaWithSha256) {
    out = {KeyAlgorithm::kEc, EVP_sha256()};
  } else if (oid == der::oid::kEcdsaWithSha384) {
    out = {KeyAlgorithm::kEc, EVP_sha384()};
  } else if (oid == der::oid::kEcdsaWithSha512) {
    out = {KeyAlgorithm::kEc, EVP_sha512()};
  } else if (oid == der::oid::kSha256WithRsa) {
    out = {KeyAlgorithm::kRsa, EVP_sha256()};
  } else if (oid == der::oid::kSha384WithRsa) {
    out = {KeyAlgorithm::kRsa, EVP_sha384()};
  } else if (oid == der::oid::kSha512WithRsa) {
    out = {KeyAlgorithm::kRsa, EVP_sha512()};
  } else {
    return absl::InvalidArgumentError(
        "malformed CSR: unsupported signature algorithm (accepted: ECDSA and RSA PKCS#1 v1.5 "
        "with SHA-256/384/512)");
  }
  // RFC 5758 §3.2: ECDSA parameters are absent. RFC 4055: RSA's are NULL
  // (absent is tolerated, as Go and OpenSSL do).
  if (out.key_algorithm == KeyAlgorithm::kRsa && r.PeekTag(der::kNull)) {
    absl::string_view null_contents;
    r.ExpectContents(der::kNull, &null_contents);
    if (!null_contents.empty()) return Malformed("bad signature algorithm parameters");
  }
  if (!r.empty()) return Malformed("unexpected signature algorithm parameters");
  return out;
}

}  // namespace

absl::StatusOr<CertificateRequest> CertificateRequest::FromDer(absl::string_view der) {
  der::Reader outer(der);
  absl::string_view csr;
  if (!outer.ExpectContents(der::kSequence, &csr)) return Malformed("not a DER SEQUENCE");
  if (!outer.empty()) return Malformed("trailing bytes after the request");

  der::Reader c(csr);
  der::Element info, signature;
  absl::string_view alg_id;
  if (!c.Expect(der::kSequence, &info) || !c.ExpectContents(der::kSequence, &alg_id) ||
      !c.Expect(der::kBitString, &signature) || !c.empty()) {
    return Malformed("expected SEQUENCE { info, algorithm, signature }");
  }
  if (signature.contents.empty() || signature.contents[0] != '\0') {
    return Malformed("signature BIT STRING has unused bits");
  }
  absl::string_view sig = signature.contents.substr(1);

  der::Reader i(info.contents);
  absl::string_view version;
  der::Element subject, spki;
  if (!i.ExpectContents(der::kInteger, &version) || version != absl::string_view("\0", 1)) {
    return Malformed("version must be v1 (0)");
  }
  if (!i.Expect(der::kSequence, &subject) || !i.Expect(der::kSequence, &spki)) {
    return Malformed("bad subject or subjectPKInfo");
  }
  std::vector<std::string> uri_sans;
  std::vector<std::string> dns_sans;
  if (!i.empty()) {
    absl::string_view attributes;
    if (!i.ExpectContents(der::ContextConstructed(0), &attributes) || !i.empty()) {
      return Malformed("bad attributes");
    }
    SIGIL_RETURN_IF_ERROR(CollectRequestedSans(attributes, &uri_sans, &dns_sans));
  }

  absl::StatusOr<der::SpkiInfo> key_info = der::ParseSpki(spki.encoding);
  if (!key_info.ok()) return Malformed(key_info.status().message());
  SIGIL_ASSIGN_OR_RETURN(CsrSignatureAlgorithm alg, ParseSignatureAlgorithm(alg_id));
  if (alg.key_algorithm != key_info->algorithm) {
    return Malformed("signature algorithm does not fit the public key");
  }

  // The key is built from its parameters rather than by decoding the SPKI:
  // it is the cheaper path through OpenSSL 3's provider machinery.
  absl::StatusOr<internal::EvpPkeyPtr> key = internal::PublicEvpFromSpkiInfo(*key_info);
  if (!key.ok()) return Malformed(key.status().message());
  internal::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), &pctx, alg.md, nullptr, key->get()) != 1 ||
      (alg.key_algorithm == KeyAlgorithm::kRsa &&
       EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)) {
    return absl::InternalError(internal::WithOpenSslErrors("CSR verification setup failed"));
  }
  if (EVP_DigestVerify(ctx.get(), Bytes(sig), sig.size(), Bytes(info.encoding),
                       info.encoding.size()) != 1) {
    internal::DrainOpenSslErrors();
    return absl::InvalidArgumentError("CSR signature is invalid");
  }
  return CertificateRequest(std::string(spki.encoding), std::move(uri_sans), std::move(dns_sans));
}

absl::StatusOr<std::string> CreateCsrDer(const PrivateKey& key, const DistinguishedName& subject,
                                         const std::vector<std::string>& uri_sans,
                                         const std::vector<std::string>& dns_sans) {
  SIGIL_ASSIGN_OR_RETURN(std::string name, internal::EncodeName(subject));
  std::string attributes;
  if (!uri_sans.empty() || !dns_sans.empty()) {
    SIGIL_ASSIGN_OR_RETURN(std::string san, internal::SubjectAltNameValue(uri_sans, dns_sans));
    std::string extensions = der::Tlv(
        der::kSequence, internal::Extension(der::oid::kSubjectAltName, subject.empty(), san));
    std::string attr = der::Oid(der::oid::kExtensionRequest);
    der::AppendTlv(&attr, der::kSet, extensions);
    attributes = der::Tlv(der::kSequence, attr);
  }
  std::string info = der::SmallInteger(0);
  info += name;
  info += key.public_key().spki_der();
  der::AppendTlv(&info, der::ContextConstructed(0), attributes);
  return internal::SignAndWrap(key, internal::SignatureAlgorithmFor(key),
                               der::Tlv(der::kSequence, info));
}

}  // namespace sigil::crypto
