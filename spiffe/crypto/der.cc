#include "spiffe/crypto/der.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sigil::crypto::der {

void AppendTlv(std::string* out, uint8_t tag, absl::string_view contents) {
  out->push_back(static_cast<char>(tag));
  size_t len = contents.size();
  if (len < 0x80) {
    out->push_back(static_cast<char>(len));
  } else {
    int n = 0;
    for (size_t l = len; l != 0; l >>= 8) ++n;
    out->push_back(static_cast<char>(0x80 | n));
    for (int i = n - 1; i >= 0; --i) out->push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  }
  out->append(contents.data(), contents.size());
}

std::string Tlv(uint8_t tag, absl::string_view contents) {
  std::string out;
  out.reserve(contents.size() + 6);
  AppendTlv(&out, tag, contents);
  return out;
}

std::string UnsignedInteger(absl::string_view big_endian) {
  while (!big_endian.empty() && big_endian.front() == '\0') big_endian.remove_prefix(1);
  std::string contents;
  contents.reserve(big_endian.size() + 1);
  if (big_endian.empty() || (static_cast<uint8_t>(big_endian.front()) & 0x80) != 0) {
    contents.push_back('\0');
  }
  contents.append(big_endian.data(), big_endian.size());
  return Tlv(kInteger, contents);
}

std::string SmallInteger(uint32_t value) {
  std::string bytes;
  for (int shift = 24; shift >= 0; shift -= 8) {
    bytes.push_back(static_cast<char>((value >> shift) & 0xff));
  }
  return UnsignedInteger(bytes);
}

std::string BitString(absl::string_view bytes, int unused_bits) {
  std::string contents;
  contents.reserve(bytes.size() + 1);
  contents.push_back(static_cast<char>(unused_bits));
  contents.append(bytes.data(), bytes.size());
  return Tlv(kBitString, contents);
}

std::string Oid(absl::string_view oid_contents) { return Tlv(kOid, oid_contents); }

bool Reader::Next(Element* out) {
  if (data_.size() < 2) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(data_.data());
  uint8_t tag = p[0];
  // High tag numbers (0x1f) never occur in the structures read here.
  if ((tag & 0x1f) == 0x1f) return false;
  size_t header = 2;
  size_t len = p[1];
  if (len & 0x80) {
    size_t n = len & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 octets is absurd here.
    if (n == 0 || n > 4 || data_.size() < 2 + n) return false;
    if (p[2] == 0) return false;  // not minimal
    len = 0;
    for (size_t i = 0; i < n; ++i) len = (len << 8) | p[2 + i];
    if (len < 0x80) return false;  // should have used the short form
    header += n;
  }
  if (data_.size() - header < len) return false;
  out->tag = tag;
  out->contents = data_.substr(header, len);
  out->encoding = data_.substr(0, header + len);
  data_.remove_prefix(header + len);
  return true;
}

bool Reader::Expect(uint8_t tag, Element* out) { return Next(out) && out->tag == tag; }

bool Reader::ExpectContents(uint8_t tag, absl::string_view* contents) {
  Element e;
  if (!Expect(tag, &e)) return false;
  *contents = e.contents;
  return true;
}

bool Reader::PeekTag(uint8_t tag) const {
  return !data_.empty() && static_cast<uint8_t>(data_.front()) == tag;
}

bool ParseNonNegativeInteger(absl::string_view contents, absl::string_view* magnitude) {
  if (contents.empty()) return false;
  auto b0 = static_cast<uint8_t>(contents[0]);
  if (b0 & 0x80) return false;  // negative
  if (contents.size() > 1 && b0 == 0 && (static_cast<uint8_t>(contents[1]) & 0x80) == 0) {
    return false;  // redundant leading zero
  }
  if (b0 == 0) contents.remove_prefix(1);
  *magnitude = contents;
  return true;
}

namespace {

int BitLength(absl::string_view magnitude) {
  if (magnitude.empty()) return 0;
  int bits = static_cast<int>(magnitude.size() - 1) * 8;
  for (auto b = static_cast<uint8_t>(magnitude[0]); b != 0; b >>= 1) ++bits;
  return bits;
}

absl::Status SpkiError(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed SubjectPublicKeyInfo: ", why));
}

}  // namespace

absl::StatusOr<SpkiInfo> ParseSpki(absl::string_view der) {
  Reader outer(der);
  absl::string_view spki;
  if (!outer.ExpectContents(kSequence, &spki)) return SpkiError("not a DER SEQUENCE");
  if (!outer.empty()) return SpkiError("trailing bytes after the SEQUENCE");

  Reader r(spki);
  absl::string_view alg_id;
  if (!r.ExpectContents(kSequence, &alg_id)) return SpkiError("bad AlgorithmIdentifier");
  Element bits;
  if (!r.Expect(kBitString, &bits)) return SpkiError("bad subjectPublicKey BIT STRING");
  if (!r.empty()) return SpkiError("unexpected fields after subjectPublicKey");
  if (bits.contents.empty() || bits.contents[0] != '\0') {
    return SpkiError("subjectPublicKey has unused bits");
  }
  SpkiInfo info;
  info.key_bits = bits.contents.substr(1);

  Reader a(alg_id);
  absl::string_view alg_oid;
  if (!a.ExpectContents(kOid, &alg_oid)) return SpkiError("bad algorithm OID");
  if (alg_oid == oid::kEcPublicKey) {
    absl::string_view curve;
    if (!a.ExpectContents(kOid, &curve) || !a.empty()) {
      return SpkiError("EC parameters must be a named curve OID");
    }
    if (curve == oid::kP256) {
      info.curve = "P-256";
      info.field_size = 32;
    } else if (curve == oid::kP384) {
      info.curve = "P-384";
      info.field_size = 48;
    } else if (curve == oid::kP521) {
      info.curve = "P-521";
      info.field_size = 66;
    } else {
      return absl::InvalidArgumentError(
          "unsupported EC curve (accepted: P-256, P-384, P-521)");
    }
    info.algorithm = KeyAlgorithm::kEc;
    const absl::string_view& point = info.key_bits;
    size_t fs = static_cast<size_t>(info.field_size);
    bool ok = (!point.empty() && point[0] == '\x04' && point.size() == 1 + 2 * fs) ||
              (!point.empty() && (point[0] == '\x02' || point[0] == '\x03') &&
               point.size() == 1 + fs);
    if (!ok) return SpkiError(absl::StrCat("EC point has the wrong encoding for ", info.curve));
    return info;
  }
  if (alg_oid == oid::kRsaEncryption) {
    // RFC 3279 §2.3.1: the parameters MUST be NULL.
    absl::string_view null_contents;
    if (!a.ExpectContents(kNull, &null_contents) || !null_contents.empty() || !a.empty()) {
      return SpkiError("rsaEncryption parameters must be NULL");
    }
    Reader k(info.key_bits);
    absl::string_view rsa;
    if (!k.ExpectContents(kSequence, &rsa) || !k.empty()) {
      return SpkiError("bad RSAPublicKey");
    }
    Reader rr(rsa);
    absl::string_view n, e;
    if (!rr.ExpectContents(kInteger, &n) || !rr.ExpectContents(kInteger, &e) || !rr.empty() ||
        !ParseNonNegativeInteger(n, &info.rsa_n) || !ParseNonNegativeInteger(e, &info.rsa_e)) {
      return SpkiError("bad RSAPublicKey integers");
    }
    info.rsa_bits = BitLength(info.rsa_n);
    if (info.rsa_bits < kMinRsaBits || info.rsa_bits > kMaxRsaBits) {
      return absl::InvalidArgumentError(absl::StrCat("RSA key of ", info.rsa_bits,
                                                     " bits refused (accepted: ", kMinRsaBits,
                                                     "..", kMaxRsaBits, ")"));
    }
    if (info.rsa_e.empty() || info.rsa_e.size() > 8 ||
        (static_cast<uint8_t>(info.rsa_e.back()) & 1) == 0 ||
        (info.rsa_e.size() == 1 && info.rsa_e[0] == '\x01')) {
      return SpkiError("RSA public exponent must be odd, greater than 1 and at most 64 bits");
    }
    info.algorithm = KeyAlgorithm::kRsa;
    return info;
  }
  return absl::InvalidArgumentError("unsupported public key algorithm (accepted: EC, RSA)");
}

}  // namespace sigil::crypto::der
