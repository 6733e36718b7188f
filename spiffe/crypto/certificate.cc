#include "spiffe/crypto/certificate.h"

#include <algorithm>
#include <ctime>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spiffe/crypto/der.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/openssl_util.h"

namespace sigil::crypto {

using internal::Bytes;

namespace {

absl::Time FromAsn1Time(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    internal::DrainOpenSslErrors();
    return absl::InfinitePast();
  }
  return absl::FromCivil(absl::CivilSecond(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                           tm.tm_hour, tm.tm_min, tm.tm_sec),
                         absl::UTCTimeZone());
}

std::string NameToString(const X509_NAME* name) {
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  // RFC 2253 with UTF-8 left as is (OpenSSL would hex-escape every byte
  // above 0x7f), as Go's pkix.Name.String() prints it.
  constexpr unsigned long kFlags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
  if (bio == nullptr || X509_NAME_print_ex(bio.get(), name, 0, kFlags) < 0) {
    internal::DrainOpenSslErrors();
    return "";
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(std::max(len, 0L)));
}

std::vector<std::string> Sans(X509* x509, int type) {
  std::vector<std::string> out;
  internal::GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x509, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != type) continue;
    const ASN1_IA5STRING* s = type == GEN_URI ? gn->d.uniformResourceIdentifier : gn->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

std::string OctetString(const ASN1_OCTET_STRING* s) {
  if (s == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

}  // namespace

absl::StatusOr<Certificate> Certificate::FromDer(absl::string_view der) {
  const unsigned char* p = Bytes(der);
  internal::X509Ptr x509(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (x509 == nullptr) {
    return absl::InvalidArgumentError(internal::WithOpenSslErrors("malformed certificate"));
  }
  if (p != Bytes(der) + der.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed certificate: ", der.size() - (p - Bytes(der)),
                     " bytes trail the certificate"));
  }
  // Computes the extension cache now; it also flags invalid extensions.
  if ((X509_get_extension_flags(x509.get()) & EXFLAG_INVALID) != 0) {
    return absl::InvalidArgumentError(
        internal::WithOpenSslErrors("malformed certificate: invalid extensions"));
  }
  EVP_PKEY* key = X509_get_pubkey(x509.get());  // one new reference
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        internal::WithOpenSslErrors("certificate public key is malformed or unsupported"));
  }
  unsigned char* spki_buf = nullptr;
  int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x509.get()), &spki_buf);
  if (spki_len <= 0) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError(internal::WithOpenSslErrors("certificate public key"));
  }
  std::string spki(reinterpret_cast<char*>(spki_buf), static_cast<size_t>(spki_len));
  OPENSSL_free(spki_buf);
  PublicKey pub(internal::ShareKey(internal::EvpPkeyPtr(key)), std::move(spki));
  std::shared_ptr<X509> shared(x509.release(), X509_free);
  return Certificate(std::move(shared), std::string(der), std::move(pub));
}

absl::StatusOr<std::vector<Certificate>> Certificate::ParseDerChain(absl::string_view der) {
  if (der.empty()) return absl::InvalidArgumentError("empty certificate chain");
  std::vector<Certificate> chain;
  der::Reader reader(der);
  while (!reader.empty()) {
    size_t offset = der.size() - reader.remaining().size();
    der::Element e;
    if (!reader.Expect(der::kSequence, &e)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed certificate chain: no DER certificate at offset ", offset,
          chain.empty() ? "" : " (trailing bytes after the last certificate)"));
    }
    absl::StatusOr<Certificate> cert = FromDer(e.encoding);
    if (!cert.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("certificate ", chain.size(), " of chain: ",
                                                     cert.status().message()));
    }
    chain.push_back(*std::move(cert));
  }
  return chain;
}

absl::StatusOr<std::vector<Certificate>> Certificate::ParsePemChain(absl::string_view pem) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, ParsePem(pem));
  std::vector<Certificate> chain;
  for (const PemBlock& block : blocks) {
    if (block.type != "CERTIFICATE") continue;
    absl::StatusOr<Certificate> cert = FromDer(block.der);
    if (!cert.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("PEM certificate ", chain.size(), ": ",
                                                     cert.status().message()));
    }
    chain.push_back(*std::move(cert));
  }
  if (chain.empty()) return absl::InvalidArgumentError("no PEM \"CERTIFICATE\" block found");
  return chain;
}

std::string Certificate::ToPem() const { return EncodePem("CERTIFICATE", der_); }

absl::Time Certificate::not_before() const { return FromAsn1Time(X509_get0_notBefore(get())); }
absl::Time Certificate::not_after() const { return FromAsn1Time(X509_get0_notAfter(get())); }

std::string Certificate::serial_hex() const {
  internal::BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(get()), nullptr));
  if (bn == nullptr) return "";
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return "";
  std::string out = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  // BN_bn2hex pads to whole bytes ("03e8"); keep one digit for zero.
  size_t sign = out.empty() || out[0] != '-' ? 0 : 1;
  size_t first = out.find_first_not_of('0', sign);
  if (first == std::string::npos) return "0";
  out.erase(sign, first - sign);
  return out;
}

std::string Certificate::serial_decimal() const {
  internal::BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(get()), nullptr));
  if (bn == nullptr) return "";
  char* dec = BN_bn2dec(bn.get());
  if (dec == nullptr) return "";
  std::string out = dec;
  OPENSSL_free(dec);
  return out;
}

std::string Certificate::subject() const { return NameToString(X509_get_subject_name(get())); }
std::string Certificate::issuer() const { return NameToString(X509_get_issuer_name(get())); }
std::vector<std::string> Certificate::uri_sans() const { return Sans(get(), GEN_URI); }
std::vector<std::string> Certificate::dns_sans() const { return Sans(get(), GEN_DNS); }

bool Certificate::is_ca() const {
  uint32_t flags = X509_get_extension_flags(get());
  return (flags & EXFLAG_BCONS) != 0 && (flags & EXFLAG_CA) != 0;
}

bool Certificate::has_key_usage() const {
  return (X509_get_extension_flags(get()) & EXFLAG_KUSAGE) != 0;
}

uint32_t Certificate::key_usage() const {
  if (!has_key_usage()) return 0;
  uint32_t ku = X509_get_key_usage(get());
  static constexpr std::pair<uint32_t, uint32_t> kMap[] = {
      {KU_DIGITAL_SIGNATURE, kKeyUsageDigitalSignature},
      {KU_NON_REPUDIATION, kKeyUsageContentCommitment},
      {KU_KEY_ENCIPHERMENT, kKeyUsageKeyEncipherment},
      {KU_DATA_ENCIPHERMENT, kKeyUsageDataEncipherment},
      {KU_KEY_AGREEMENT, kKeyUsageKeyAgreement},
      {KU_KEY_CERT_SIGN, kKeyUsageKeyCertSign},
      {KU_CRL_SIGN, kKeyUsageCrlSign},
  };
  uint32_t out = 0;
  for (const auto& [openssl_bit, sigil_bit] : kMap) {
    if (ku & openssl_bit) out |= sigil_bit;
  }
  return out;
}

std::string Certificate::subject_key_id() const {
  return OctetString(X509_get0_subject_key_id(get()));
}

std::string Certificate::authority_key_id() const {
  return OctetString(X509_get0_authority_key_id(get()));
}

std::string ConcatDer(const std::vector<Certificate>& certs) {
  std::string out;
  for (const Certificate& c : certs) out += c.der();
  return out;
}

std::string ToPem(const std::vector<Certificate>& certs) {
  std::string out;
  for (const Certificate& c : certs) out += c.ToPem();
  return out;
}

absl::StatusOr<std::vector<Certificate>> VerifyChain(const std::vector<Certificate>& chain,
                                                     const std::vector<Certificate>& roots,
                                                     absl::Time now) {
  if (chain.empty()) return absl::InvalidArgumentError("certificate chain is empty");
  if (roots.empty()) return absl::InvalidArgumentError("no trusted roots to verify against");
  internal::X509StorePtr store(X509_STORE_new());
  internal::X509StackPtr untrusted(sk_X509_new_null());
  internal::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (store == nullptr || untrusted == nullptr || ctx == nullptr) {
    return absl::InternalError("out of memory setting up chain verification");
  }
  for (const Certificate& root : roots) {
    // Duplicates are accepted by X509_STORE_add_cert (OpenSSL >= 1.1.1).
    if (X509_STORE_add_cert(store.get(), root.get()) != 1) {
      return absl::InternalError(internal::WithOpenSslErrors("adding a trusted root"));
    }
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!sk_X509_push(untrusted.get(), chain[i].get())) {
      return absl::InternalError("out of memory setting up chain verification");
    }
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1) {
    return absl::InternalError(internal::WithOpenSslErrors("chain verification setup"));
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(now));
  // Every bundle certificate is a trust anchor, self-signed or not, as in
  // go-spiffe (Go's x509 roots pool) and SPIRE.
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    internal::DrainOpenSslErrors();
    return absl::InvalidArgumentError(absl::StrCat("x509: certificate verification failed: ",
                                                   X509_verify_cert_error_string(err),
                                                   " (depth ", depth, ")"));
  }
  STACK_OF(X509)* verified = X509_STORE_CTX_get0_chain(ctx.get());
  std::vector<Certificate> path;
  for (int i = 0; i < sk_X509_num(verified); ++i) {
    X509* x = sk_X509_value(verified, i);
    const Certificate* found = nullptr;
    for (const auto* list : {&chain, &roots}) {
      for (const Certificate& c : *list) {
        if (c.get() == x) {
          found = &c;
          break;
        }
      }
      if (found != nullptr) break;
    }
    if (found == nullptr) {
      return absl::InternalError("verified path holds a certificate that was not given");
    }
    path.push_back(*found);
  }
  return path;
}

}  // namespace sigil::crypto
