#pragma once

// PKCS#10 certificate signing requests.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"

namespace sigil::crypto {

class CertificateRequest {
 public:
  // Parses a DER CSR and verifies its self-signature (proof that the
  // requester holds the private key). InvalidArgument when malformed
  // ("malformed CSR: <reason>", including keys PublicKey would refuse and
  // signature algorithms other than ECDSA / RSA PKCS#1 v1.5 with
  // SHA-256/384/512) or when the signature does not verify ("CSR signature
  // is invalid"). The DER is parsed here, not by OpenSSL's X509_REQ code,
  // which costs several signature verifications on OpenSSL 3.0. Thread-safe.
  static absl::StatusOr<CertificateRequest> FromDer(absl::string_view der);

  // The requested key as DER SubjectPublicKeyInfo.
  const std::string& spki_der() const { return spki_der_; }
  // URI SANs requested (SPIRE ignores them; callers may use them for checks).
  const std::vector<std::string>& uri_sans() const { return uri_sans_; }
  // DNS SANs requested (used by MintX509SVID, as SPIRE does).
  const std::vector<std::string>& dns_sans() const { return dns_sans_; }

 private:
  CertificateRequest(std::string spki_der, std::vector<std::string> uri_sans,
                     std::vector<std::string> dns_sans)
      : spki_der_(std::move(spki_der)), uri_sans_(std::move(uri_sans)), dns_sans_(std::move(dns_sans)) {}
  std::string spki_der_;
  std::vector<std::string> uri_sans_;
  std::vector<std::string> dns_sans_;
};

// Creates a DER CSR signed by `key` (its DefaultScheme()) with the given
// subject, URI SANs and DNS SANs (an extensionRequest holding a
// subjectAltName, critical when the subject is empty). InvalidArgument when
// the subject or a SAN breaks CertificateTemplate's rules.
absl::StatusOr<std::string> CreateCsrDer(const PrivateKey& key, const DistinguishedName& subject,
                                         const std::vector<std::string>& uri_sans,
                                         const std::vector<std::string>& dns_sans = {});

}  // namespace sigil::crypto
