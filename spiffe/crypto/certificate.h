#pragma once

// Parsed X.509 certificates and chain verification.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "spiffe/crypto/key.h"

typedef struct x509_st X509;

namespace sigil::crypto {

// RFC 5280 §4.2.1.3 key usage bits, as Sigil names them.
enum KeyUsage : uint32_t {
  kKeyUsageDigitalSignature = 1u << 0,
  kKeyUsageContentCommitment = 1u << 1,
  kKeyUsageKeyEncipherment = 1u << 2,
  kKeyUsageDataEncipherment = 1u << 3,
  kKeyUsageKeyAgreement = 1u << 4,
  kKeyUsageKeyCertSign = 1u << 5,
  kKeyUsageCrlSign = 1u << 6,
};

// An immutable parsed certificate; cheap to copy; thread-safe.
class Certificate {
 public:
  // Parses one DER certificate. InvalidArgument when malformed, when bytes
  // trail the certificate, or when its public key cannot be decoded. Keys of
  // any algorithm OpenSSL knows are kept (public_key().algorithm() may be
  // kOther). Cost: OpenSSL 3.0's d2i_X509 decodes the key through the
  // provider decoders, several times the cost of one issuance; hot paths
  // should keep DER (CertificateIssuer::IssueDer) rather than parse.
  static absl::StatusOr<Certificate> FromDer(absl::string_view der);
  // Parses concatenated DER certificates (the Workload API's chain format).
  // InvalidArgument when empty or malformed, naming the offset of bytes that
  // do not start a certificate (e.g. trailing garbage).
  static absl::StatusOr<std::vector<Certificate>> ParseDerChain(absl::string_view der);
  // Parses every "CERTIFICATE" block of a PEM text, in order; other block
  // types are skipped. InvalidArgument when none is found or one is malformed.
  static absl::StatusOr<std::vector<Certificate>> ParsePemChain(absl::string_view pem);

  const std::string& der() const { return der_; }
  std::string ToPem() const;

  absl::Time not_before() const;
  absl::Time not_after() const;
  // The serial number as lowercase hex without leading zeros, and as decimal.
  std::string serial_hex() const;
  std::string serial_decimal() const;
  // RFC 2253 text of the subject and issuer ("CN=x,O=y"; last RDN first;
  // UTF-8 values unescaped).
  std::string subject() const;
  std::string issuer() const;
  std::vector<std::string> uri_sans() const;
  std::vector<std::string> dns_sans() const;
  // Basic constraints: present and CA=true.
  bool is_ca() const;
  // Whether a key usage extension is present, and its bits (KeyUsage).
  bool has_key_usage() const;
  uint32_t key_usage() const;
  // Subject / authority key identifiers (raw bytes; empty when absent).
  std::string subject_key_id() const;
  std::string authority_key_id() const;
  const PublicKey& public_key() const { return public_key_; }

  bool operator==(const Certificate& other) const { return der_ == other.der_; }

  // For spiffe/crypto/ internals only.
  X509* get() const { return x509_.get(); }

 private:
  Certificate(std::shared_ptr<X509> x509, std::string der, PublicKey pub)
      : x509_(std::move(x509)), der_(std::move(der)), public_key_(std::move(pub)) {}

  std::shared_ptr<X509> x509_;
  std::string der_;
  PublicKey public_key_;
};

// Concatenates DER certificates (leaf first), and PEM-encodes a list.
std::string ConcatDer(const std::vector<Certificate>& certs);
std::string ToPem(const std::vector<Certificate>& certs);

// Verifies that `chain` (leaf first, then intermediates) chains to one of
// `roots` at `now`, with RFC 5280 path validation (signatures, validity
// periods, CA basic constraints on signers). Every root is a trust anchor
// even when it is not self-signed (X509_V_FLAG_PARTIAL_CHAIN), as in
// go-spiffe. No EKU/purpose check: policy rules of the SPIFFE standards are
// not checked here (see spiffe/x509svid.h).
// Returns the verified path (leaf first, ending with the anchor), made of
// the given Certificate objects.
// InvalidArgument with OpenSSL's reason and depth ("x509: certificate
// verification failed: certificate has expired (depth 0)", "unable to get
// local issuer certificate", ...) when verification fails, or when `chain`
// or `roots` is empty. Thread-safe.
absl::StatusOr<std::vector<Certificate>> VerifyChain(const std::vector<Certificate>& chain,
                                                     const std::vector<Certificate>& roots,
                                                     absl::Time now);

}  // namespace sigil::crypto
