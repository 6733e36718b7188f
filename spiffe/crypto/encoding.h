#pragma once

// Encodings and digests the SPIFFE standards need: base64url (JOSE), PEM,
// SHA-2, and the ECDSA signature forms of X.509 (DER) and JOSE (raw r||s).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spiffe/crypto/key.h"

namespace sigil::crypto {

// RFC 4648 §5 without padding. Decode refuses padding, whitespace,
// characters outside the alphabet and non-zero trailing bits
// (InvalidArgument), so each byte string has exactly one accepted text.
std::string Base64UrlEncode(absl::string_view data);
absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text);
// Standard base64 with padding (X.509 `x5c` in JWKs); Decode is as strict.
std::string Base64Encode(absl::string_view data);
absl::StatusOr<std::string> Base64Decode(absl::string_view text);

// SHA-1, for certificate fingerprints only (SPIRE names x509pop agents and
// CAs by them); never for signatures.
std::string Sha1(absl::string_view data);
std::string Sha256(absl::string_view data);

// Incremental SHA-256 for data that should not be held in memory at once
// (hashing a workload's binary). Not thread-safe; one hasher per digest.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  void Update(absl::string_view data);
  // The digest of everything given to Update; the hasher is spent after.
  std::string Finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

std::string Sha384(absl::string_view data);
std::string Sha512(absl::string_view data);
std::string HexEncode(absl::string_view data);

// One PEM block: its type ("CERTIFICATE") and DER contents.
struct PemBlock {
  std::string type;
  std::string der;
};
// Parses every PEM block in `text`, in order (RFC 7468; text outside blocks
// is ignored, CRLF accepted). InvalidArgument when a block is malformed: no
// END line or a different label, invalid base64, empty contents, or RFC 1421
// headers ("Proc-Type: ..."), which Sigil never needs. An empty vector when
// there is no block.
absl::StatusOr<std::vector<PemBlock>> ParsePem(absl::string_view text);
std::string EncodePem(absl::string_view type, absl::string_view der);

// ECDSA signature conversions. `field_size` is PublicKey::size_bytes().
// InvalidArgument when the input is malformed or does not fit the size.
absl::StatusOr<std::string> EcdsaDerToRaw(absl::string_view der, int field_size);
absl::StatusOr<std::string> EcdsaRawToDer(absl::string_view raw, int field_size);

// JWK public key parameters (RFC 7518 §6), each base64url as in a JWK.
struct JwkKeyParams {
  std::string kty;  // "EC" or "RSA"
  std::string crv;  // EC: "P-256", "P-384", "P-521"
  std::string x, y; // EC coordinates
  std::string n, e; // RSA modulus and exponent
};
// EC coordinates are left-padded to the field size; RSA n and e carry no
// leading zero bytes. InvalidArgument when the key is neither EC nor RSA.
absl::StatusOr<JwkKeyParams> ToJwkParams(const PublicKey& key);
// InvalidArgument naming the missing or malformed member ("jwk: missing \"x\"",
// "jwk: \"y\" must be 32 bytes for P-256, got 30"), or when the key itself
// is refused (EC point off its curve, RSA outside 2048..8192 bits).
absl::StatusOr<PublicKey> FromJwkParams(const JwkKeyParams& params);

}  // namespace sigil::crypto
