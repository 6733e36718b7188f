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

// What goes into a certificate besides the keys and the issuer.
struct CertificateTemplate {
  // Big-endian serial number bytes; must be non-empty and at most 20 bytes.
  // A leading 0 byte is added when needed to keep the INTEGER positive.
  std::string serial;
  DistinguishedName subject;
  absl::Time not_before;
  absl::Time not_after;
  // Basic constraints (always present, critical). path_len < 0 = no limit.
  bool is_ca = false;
  int path_len = -1;
  // Key usage bits (KeyUsage); the extension is critical. 0 = omitted.
  uint32_t key_usage = 0;
  std::vector<ExtKeyUsage> ext_key_usage;
  // Subject alternative names (critical when the subject is empty).
  std::vector<std::string> uri_sans;
  std::vector<std::string> dns_sans;
};

// Issues certificates with one issuer key. Create once per CA key; Issue is
// thread-safe and allocation-light.
class CertificateIssuer {
 public:
  // `issuer` is the issuer's certificate (its subject and SKI are copied into
  // issued certificates); `issuer_key` must match its public key.
  // InvalidArgument when they do not match.
  static absl::StatusOr<std::unique_ptr<CertificateIssuer>> Create(const Certificate& issuer,
                                                                   const PrivateKey& issuer_key);

  // Issues a certificate for `subject_spki_der` (a DER SubjectPublicKeyInfo,
  // e.g. PublicKey::spki_der() or CertificateRequest::spki_der()).
  // SKI = SHA-1 of the subject public key bits; AKI = the issuer's SKI.
  // InvalidArgument when the template or the SPKI is malformed.
  absl::StatusOr<std::string> IssueDer(const CertificateTemplate& tmpl,
                                       absl::string_view subject_spki_der) const;
  absl::StatusOr<Certificate> Issue(const CertificateTemplate& tmpl,
                                    absl::string_view subject_spki_der) const;

 private:
  CertificateIssuer(std::string issuer_name_der, std::string issuer_ski, PrivateKey issuer_key)
      : issuer_name_der_(std::move(issuer_name_der)),
        issuer_ski_(std::move(issuer_ski)),
        issuer_key_(std::move(issuer_key)) {}

  std::string issuer_name_der_;
  std::string issuer_ski_;
  PrivateKey issuer_key_;
};

// Creates a self-signed certificate (a root CA) for `key`.
absl::StatusOr<Certificate> SelfSign(const CertificateTemplate& tmpl, const PrivateKey& key);

// Returns `n` cryptographically random bytes (RAND_bytes). Aborts only if the
// system RNG is broken, which no caller could recover from.
std::string RandomBytes(size_t n);

// A random positive 128-bit serial number (16 bytes, top bit clear).
std::string RandomSerial();

}  // namespace sigil::crypto
