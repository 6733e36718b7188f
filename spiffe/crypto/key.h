#pragma once

// Public and private keys. spiffe/crypto/ is the only code in Sigil that
// includes OpenSSL; everything else sees these value types.
//
// Both classes are cheap to copy (the OpenSSL object is shared and
// immutable) and safe to use from several threads at once.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace sigil::crypto {

// Key types an operator can choose (`ca_key_type`, `jwt_key_type`, ...).
enum class KeyType { kEcP256, kEcP384, kRsa2048, kRsa4096 };

// "ec-p256", "ec-p384", "rsa-2048", "rsa-4096" (SPIRE's names).
// InvalidArgument listing the accepted names otherwise.
absl::StatusOr<KeyType> ParseKeyType(absl::string_view name);
const char* KeyTypeName(KeyType type);

// How a signature is computed. ECDSA signatures are DER (ASN.1 SEQUENCE of
// r, s) on both Sign and Verify; EcdsaDerToRaw / EcdsaRawToDer (encoding.h)
// convert to and from JOSE's raw r||s.
enum class SignatureScheme {
  kEcdsaSha256,
  kEcdsaSha384,
  kEcdsaSha512,
  kRsaPkcs1Sha256,
  kRsaPkcs1Sha384,
  kRsaPkcs1Sha512,
  kRsaPssSha256,  // salt length = digest length (RFC 7518 §3.5)
  kRsaPssSha384,
  kRsaPssSha512,
  // PSS as Go's crypto/rsa does without options (SPIRE's x509pop): signs
  // with the longest salt the key allows, verifies any salt length.
  kRsaPssSha256AnySalt,
};

enum class KeyAlgorithm { kEc, kRsa, kOther };

class PublicKey {
 public:
  // Parses a DER SubjectPublicKeyInfo. InvalidArgument when malformed, when
  // bytes trail it, or of an algorithm other than EC (named curve P-256,
  // P-384 or P-521) or RSA (2048..8192 bits).
  static absl::StatusOr<PublicKey> FromSpkiDer(absl::string_view der);
  // Parses the first PEM "PUBLIC KEY" block of `pem`. InvalidArgument when
  // there is none or it is malformed.
  static absl::StatusOr<PublicKey> FromPem(absl::string_view pem);

  // The DER SubjectPublicKeyInfo.
  const std::string& spki_der() const { return spki_der_; }
  std::string ToPem() const;
  // kOther only for keys taken from certificates (Certificate::public_key()),
  // which may carry any algorithm OpenSSL can decode.
  KeyAlgorithm algorithm() const { return algorithm_; }
  // EC: the curve's field size in bytes (32 for P-256, 48 for P-384, 66 for
  // P-521). RSA: the modulus size in bytes. Other: the key size in bytes.
  int size_bytes() const { return size_bytes_; }
  // EC: "P-256", "P-384", "P-521"; otherwise "" (JWKs use it as `crv`).
  std::string curve_name() const { return curve_name_; }

  // OK if `signature` over `data` verifies under `scheme`; InvalidArgument
  // ("signature verification failed") otherwise, including when the scheme
  // does not fit the key's algorithm.
  absl::Status Verify(SignatureScheme scheme, absl::string_view data,
                      absl::string_view signature) const;

  bool operator==(const PublicKey& other) const { return spki_der_ == other.spki_der_; }
  bool operator!=(const PublicKey& other) const { return !(*this == other); }

  // For spiffe/crypto/ internals only: `key` must hold only the public key
  // encoded by `spki_der`.
  EVP_PKEY* get() const { return key_.get(); }
  PublicKey(std::shared_ptr<EVP_PKEY> key, std::string spki_der);

 private:
  std::shared_ptr<EVP_PKEY> key_;
  std::string spki_der_;
  KeyAlgorithm algorithm_ = KeyAlgorithm::kOther;
  int size_bytes_ = 0;
  const char* curve_name_ = "";
};

class PrivateKey {
 public:
  // Generates a fresh key. Internal only if the library fails.
  // Keys parsed below follow PublicKey's rules (EC P-256/P-384/P-521 with a
  // named curve, RSA 2048..8192 bits); InvalidArgument otherwise.
  static absl::StatusOr<PrivateKey> Generate(KeyType type);
  // Parses an unencrypted DER PKCS#8 PrivateKeyInfo.
  static absl::StatusOr<PrivateKey> FromPkcs8Der(absl::string_view der);
  // Parses the first private key block of a PEM text: "PRIVATE KEY"
  // (PKCS#8), "EC PRIVATE KEY" (SEC1) or "RSA PRIVATE KEY" (PKCS#1); other
  // block types are skipped. Encrypted keys ("ENCRYPTED PRIVATE KEY", or a
  // "Proc-Type: 4,ENCRYPTED" header) are refused with InvalidArgument, as is
  // a text with no private key block.
  static absl::StatusOr<PrivateKey> FromPem(absl::string_view pem);

  // Key material: callers must never log these. PKCS#8 PrivateKeyInfo (EC
  // keys carry their named curve and public key).
  std::string ToPkcs8Der() const;
  std::string ToPkcs8Pem() const;

  const PublicKey& public_key() const { return public_key_; }
  KeyAlgorithm algorithm() const { return public_key_.algorithm(); }

  // Signs `data` (the message, not a digest) under `scheme`. InvalidArgument
  // when the scheme does not fit the key; Internal on library failure.
  absl::StatusOr<std::string> Sign(SignatureScheme scheme, absl::string_view data) const;

  // The scheme used for X.509 signatures by this key: ECDSA with SHA-256
  // (P-256), SHA-384 (P-384) or SHA-512 (P-521); RSA PKCS#1 v1.5 with
  // SHA-256.
  SignatureScheme DefaultScheme() const;

  // For spiffe/crypto/ internals only.
  EVP_PKEY* get() const { return key_.get(); }

 private:
  PrivateKey(std::shared_ptr<EVP_PKEY> key, PublicKey pub)
      : key_(std::move(key)), public_key_(std::move(pub)) {}
  static absl::StatusOr<PrivateKey> FromEvp(EVP_PKEY* owned);

  std::shared_ptr<EVP_PKEY> key_;
  PublicKey public_key_;
};

}  // namespace sigil::crypto
