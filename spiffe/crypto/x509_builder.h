#pragma once

// Fast issuance of X.509 certificates. The TBSCertificate DER is assembled
// directly (no OpenSSL X509 object, no provider round trip for the subject
// key) and signed once with the issuer key; see docs/PERFORMANCE.md.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"

namespace sigil::crypto {

// Attribute types allowed in a subject name.
enum class NameAttribute { kCountry, kOrganization, kOrganizationalUnit, kCommonName, kSerialNumber };

// An ordered distinguished name, one attribute per RDN.
using DistinguishedName = std::vector<std::pair<NameAttribute, std::string>>;

enum class ExtKeyUsage { kServerAuth, kClientAuth };

// What goes into a certificate besides the keys and the issuer. Issuance
// refuses (InvalidArgument, message starting "template: " or naming the
// field) a template that breaks any rule stated below.
struct CertificateTemplate {
  // Big-endian serial number bytes; must be non-empty, non-zero and at most
  // 20 octets once DER-encoded (RFC 5280 §4.1.2.2): leading zero bytes are
  // dropped and one 0 byte is added when the top bit is set, so a 20-byte
  // serial must have its top bit clear. RandomSerial() fits.
  std::string serial;
  // C and serialNumber are PrintableString (C exactly 2 characters); O, OU
  // and CN are UTF8String; each non-empty and at most 64 characters.
  DistinguishedName subject;
  // Encoded to the second (truncated); not_after must be later than
  // not_before; years 1950..9999 (UTCTime before 2050, GeneralizedTime from
  // 2050, RFC 5280 §4.1.2.5).
  absl::Time not_before;
  absl::Time not_after;
  // Basic constraints (always present, critical). path_len < 0 = no limit;
  // path_len >= 0 requires is_ca.
  bool is_ca = false;
  int path_len = -1;
  // Key usage bits (KeyUsage); the extension is critical. 0 = omitted.
  uint32_t key_usage = 0;
  std::vector<ExtKeyUsage> ext_key_usage;
  // Subject alternative names (critical when the subject is empty), each a
  // non-empty IA5String (ASCII). An empty subject requires at least one.
  std::vector<std::string> uri_sans;
  std::vector<std::string> dns_sans;
};

namespace internal {
struct SignatureAlgorithm;
}

// Issues certificates with one issuer key. Create once per CA key; Issue is
// thread-safe and allocation-light.
//
// Issued certificates are X.509 v3 with, in order: keyUsage (critical, when
// key_usage != 0), extKeyUsage (when listed), basicConstraints (critical),
// subjectKeyIdentifier, authorityKeyIdentifier (keyIdentifier only) and
// subjectAltName (when SANs are given). The signature algorithm follows the
// issuer key: ecdsa-with-SHA256 (P-256), ecdsa-with-SHA384 (P-384),
// ecdsa-with-SHA512 (P-521), sha256WithRSAEncryption (RSA).
class CertificateIssuer {
 public:
  // `issuer` is the issuer's certificate (its subject Name DER and SKI are
  // copied into issued certificates; without an SKI, the SHA-1 of its key is
  // used); `issuer_key` must match its public key and `issuer` must be a CA.
  // InvalidArgument when they do not match or `issuer` is not a CA.
  static absl::StatusOr<std::unique_ptr<CertificateIssuer>> Create(const Certificate& issuer,
                                                                   const PrivateKey& issuer_key);
  ~CertificateIssuer();

  // Issues a certificate for `subject_spki_der` (a DER SubjectPublicKeyInfo,
  // e.g. PublicKey::spki_der() or CertificateRequest::spki_der()). The SPKI
  // bytes are copied as given after a structural check (EC P-256/P-384/P-521
  // named curve or RSA 2048..8192 bits); no key object is built from them.
  // SKI = SHA-1 of the subject public key bits; AKI = the issuer's SKI.
  // InvalidArgument when the template (see CertificateTemplate) or the SPKI
  // is malformed; Internal when signing fails.
  absl::StatusOr<std::string> IssueDer(const CertificateTemplate& tmpl,
                                       absl::string_view subject_spki_der) const;
  // IssueDer, then Certificate::FromDer: convenient, but the parse costs
  // several issuances on OpenSSL 3.0; serving paths should use IssueDer.
  absl::StatusOr<Certificate> Issue(const CertificateTemplate& tmpl,
                                    absl::string_view subject_spki_der) const;

 private:
  CertificateIssuer(std::string issuer_name_der, std::string issuer_ski, PrivateKey issuer_key);

  const std::string issuer_name_der_;
  const std::string issuer_ski_;
  const PrivateKey issuer_key_;
  const std::unique_ptr<const internal::SignatureAlgorithm> signature_algorithm_;
  // The authorityKeyIdentifier extension, identical in every certificate.
  const std::string aki_extension_;
};

// Creates a self-signed certificate (a root CA) for `key`: issuer = subject,
// AKI = SKI, same extensions as CertificateIssuer. InvalidArgument when the
// template is malformed.
absl::StatusOr<Certificate> SelfSign(const CertificateTemplate& tmpl, const PrivateKey& key);

// Returns `n` cryptographically random bytes (RAND_bytes). Aborts only if the
// system RNG is broken, which no caller could recover from.
std::string RandomBytes(size_t n);

// A random positive 128-bit serial number (16 bytes, top bit clear).
std::string RandomSerial();

}  // namespace sigil::crypto
