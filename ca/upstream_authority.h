#pragma once

// Upstream authorities sign the server's CA certificate, making it an
// intermediate under an existing PKI (SPIRE's UpstreamAuthority plugin kind).
// Built-in: `disk` (a CA certificate and key read from files).

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"
#include "spiffe/id.h"

namespace sigil::ca {

struct UpstreamSignedCa {
  // The new CA certificate followed by the upstream intermediates between it
  // and the roots (not including the roots).
  std::vector<crypto::Certificate> chain;
  // The roots to publish in the trust bundle.
  std::vector<crypto::Certificate> roots;
};

class UpstreamAuthority {
 public:
  virtual ~UpstreamAuthority() = default;
  // Signs a CA certificate for `ca_key` with the subject, SPIFFE ID URI SAN
  // (the trust domain ID) and lifetime requested: CA=true, key usage
  // (critical) keyCertSign|cRLSign|digitalSignature, a random serial. The
  // lifetime is capped at the upstream certificate's own expiry (and that of
  // the chain above it). FailedPrecondition when the upstream certificate has
  // expired by `not_before`; InvalidArgument when not_after <= not_before.
  // Thread-safe.
  virtual absl::StatusOr<UpstreamSignedCa> MintX509Ca(const crypto::PublicKey& ca_key,
                                                      const crypto::DistinguishedName& subject,
                                                      const spiffe::TrustDomain& td,
                                                      absl::Time not_before,
                                                      absl::Time not_after) = 0;
  virtual const char* name() const = 0;
};

// The `disk` upstream authority. Thread-safe.
class DiskUpstreamAuthority final : public UpstreamAuthority {
 public:
  // Reads `cert_file_path` (the upstream CA certificate, optionally followed
  // by its intermediates, PEM), `key_file_path` (its key, PEM) and, when
  // non-empty, `bundle_file_path` (PEM roots). Without a bundle file the
  // upstream certificate must be self-signed and is its own root.
  // InvalidArgument naming the file for: unreadable or malformed PEM, a key
  // that does not match the certificate, a certificate that is not a CA with
  // keyCertSign, a chain that does not verify against the roots.
  static absl::StatusOr<std::unique_ptr<DiskUpstreamAuthority>> Create(
      const std::string& cert_file_path, const std::string& key_file_path,
      const std::string& bundle_file_path, absl::Time now);

  // ca::UpstreamAuthority
  absl::StatusOr<UpstreamSignedCa> MintX509Ca(const crypto::PublicKey& ca_key,
                                              const crypto::DistinguishedName& subject,
                                              const spiffe::TrustDomain& td, absl::Time not_before,
                                              absl::Time not_after) override;
  const char* name() const override { return "disk"; }

 private:
  DiskUpstreamAuthority(std::vector<crypto::Certificate> chain, std::vector<crypto::Certificate> roots,
                        std::unique_ptr<crypto::CertificateIssuer> issuer, absl::Time not_after_cap)
      : chain_(std::move(chain)),
        roots_(std::move(roots)),
        issuer_(std::move(issuer)),
        not_after_cap_(not_after_cap) {}

  // Upstream certificate first, then its intermediates (roots excluded).
  std::vector<crypto::Certificate> chain_;
  std::vector<crypto::Certificate> roots_;
  std::unique_ptr<crypto::CertificateIssuer> issuer_;
  // The earliest NotAfter on the verified path from the upstream certificate
  // to its root: no CA signed here may outlive it.
  absl::Time not_after_cap_;
};

}  // namespace sigil::ca
