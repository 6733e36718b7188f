#pragma once

// Internal to spiffe/crypto/: a minimal DER (X.690 §10) writer and reader,
// enough for the TBSCertificate builder, SubjectPublicKeyInfo checks and
// PKCS#10 parsing. The reader is strict: definite minimal lengths, low tag
// numbers only, and it never reads past its input.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spiffe/crypto/key.h"

namespace sigil::crypto::der {

// Universal and context-specific tags as they appear on the wire.
inline constexpr uint8_t kBoolean = 0x01;
inline constexpr uint8_t kInteger = 0x02;
inline constexpr uint8_t kBitString = 0x03;
inline constexpr uint8_t kOctetString = 0x04;
inline constexpr uint8_t kNull = 0x05;
inline constexpr uint8_t kOid = 0x06;
inline constexpr uint8_t kUtf8String = 0x0c;
inline constexpr uint8_t kPrintableString = 0x13;
inline constexpr uint8_t kIa5String = 0x16;
inline constexpr uint8_t kUtcTime = 0x17;
inline constexpr uint8_t kGeneralizedTime = 0x18;
inline constexpr uint8_t kSequence = 0x30;
inline constexpr uint8_t kSet = 0x31;
constexpr uint8_t ContextPrimitive(int n) { return static_cast<uint8_t>(0x80 | n); }
constexpr uint8_t ContextConstructed(int n) { return static_cast<uint8_t>(0xa0 | n); }

// Object identifiers, as DER contents octets (without tag and length).
namespace oid {
inline constexpr absl::string_view kEcPublicKey("\x2a\x86\x48\xce\x3d\x02\x01", 7);
inline constexpr absl::string_view kP256("\x2a\x86\x48\xce\x3d\x03\x01\x07", 8);
inline constexpr absl::string_view kP384("\x2b\x81\x04\x00\x22", 5);
inline constexpr absl::string_view kP521("\x2b\x81\x04\x00\x23", 5);
inline constexpr absl::string_view kRsaEncryption("\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01", 9);
inline constexpr absl::string_view kSha256WithRsa("\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b", 9);
inline constexpr absl::string_view kSha384WithRsa("\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0c", 9);
inline constexpr absl::string_view kSha512WithRsa("\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0d", 9);
inline constexpr absl::string_view kEcdsaWithSha256("\x2a\x86\x48\xce\x3d\x04\x03\x02", 8);
inline constexpr absl::string_view kEcdsaWithSha384("\x2a\x86\x48\xce\x3d\x04\x03\x03", 8);
inline constexpr absl::string_view kEcdsaWithSha512("\x2a\x86\x48\xce\x3d\x04\x03\x04", 8);
inline constexpr absl::string_view kCommonName("\x55\x04\x03", 3);
inline constexpr absl::string_view kSerialNumber("\x55\x04\x05", 3);
inline constexpr absl::string_view kCountry("\x55\x04\x06", 3);
inline constexpr absl::string_view kOrganization("\x55\x04\x0a", 3);
inline constexpr absl::string_view kOrganizationalUnit("\x55\x04\x0b", 3);
inline constexpr absl::string_view kSubjectKeyIdentifier("\x55\x1d\x0e", 3);
inline constexpr absl::string_view kKeyUsage("\x55\x1d\x0f", 3);
inline constexpr absl::string_view kSubjectAltName("\x55\x1d\x11", 3);
inline constexpr absl::string_view kBasicConstraints("\x55\x1d\x13", 3);
inline constexpr absl::string_view kAuthorityKeyIdentifier("\x55\x1d\x23", 3);
inline constexpr absl::string_view kExtKeyUsage("\x55\x1d\x25", 3);
inline constexpr absl::string_view kServerAuth("\x2b\x06\x01\x05\x05\x07\x03\x01", 8);
inline constexpr absl::string_view kClientAuth("\x2b\x06\x01\x05\x05\x07\x03\x02", 8);
inline constexpr absl::string_view kExtensionRequest("\x2a\x86\x48\x86\xf7\x0d\x01\x09\x0e", 9);
}  // namespace oid

// ---- Writer ----

// Appends tag, length and `contents` to `out`.
void AppendTlv(std::string* out, uint8_t tag, absl::string_view contents);
std::string Tlv(uint8_t tag, absl::string_view contents);
// An INTEGER from unsigned big-endian bytes: leading zero bytes are dropped
// and one is added back when the top bit is set, so the value stays
// positive and the encoding minimal. Empty input encodes 0.
std::string UnsignedInteger(absl::string_view big_endian);
std::string SmallInteger(uint32_t value);
// A BIT STRING whose last `unused_bits` bits (0..7) are padding.
std::string BitString(absl::string_view bytes, int unused_bits = 0);
std::string Oid(absl::string_view oid_contents);

// ---- Reader ----

// One element: its tag, contents, and the whole encoding (tag..end).
struct Element {
  uint8_t tag = 0;
  absl::string_view contents;
  absl::string_view encoding;
};

class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}

  bool empty() const { return data_.empty(); }
  absl::string_view remaining() const { return data_; }

  // Reads the next element; false when the input is malformed (and then the
  // reader's position is unspecified).
  bool Next(Element* out);
  // Next(), requiring the tag to be `tag`.
  bool Expect(uint8_t tag, Element* out);
  // Expect(), returning the contents only.
  bool ExpectContents(uint8_t tag, absl::string_view* contents);
  // True when the next element has `tag` (and false at the end).
  bool PeekTag(uint8_t tag) const;

 private:
  absl::string_view data_;
};

// Validates the contents of a DER INTEGER that must be non-negative and
// returns its magnitude without the sign byte. False when negative, empty or
// not minimally encoded.
bool ParseNonNegativeInteger(absl::string_view contents, absl::string_view* magnitude);

// ---- SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) ----

struct SpkiInfo {
  KeyAlgorithm algorithm = KeyAlgorithm::kOther;
  // EC: "P-256", "P-384" or "P-521" and the field size in bytes.
  absl::string_view curve;
  int field_size = 0;
  // The contents of the subjectPublicKey BIT STRING, without the
  // unused-bits octet (EC: the point; RSA: the RSAPublicKey DER).
  absl::string_view key_bits;
  // RSA: modulus and public exponent magnitudes, and the modulus size.
  absl::string_view rsa_n;
  absl::string_view rsa_e;
  int rsa_bits = 0;
};

// Checks that `der` is exactly one SubjectPublicKeyInfo SEQUENCE of an EC
// key on P-256/P-384/P-521 (named curve, point of the right length) or an
// RSA key of 2048..8192 bits with an odd exponent > 1. It does not check
// that an EC point lies on its curve; that is left to whoever verifies with
// the key. The views point into `der`. InvalidArgument naming the problem.
absl::StatusOr<SpkiInfo> ParseSpki(absl::string_view der);

// RSA modulus sizes Sigil accepts, in bits.
inline constexpr int kMinRsaBits = 2048;
inline constexpr int kMaxRsaBits = 8192;

}  // namespace sigil::crypto::der
