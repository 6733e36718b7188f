#include "spiffe/crypto/encoding.h"

#include <cstdlib>

#include <cstdint>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spiffe/crypto/der.h"
#include "spiffe/crypto/openssl_util.h"

namespace sigil::crypto {

using internal::Bytes;

namespace {

constexpr char kStdAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Encode(absl::string_view data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  const auto* p = Bytes(data);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t{p[i]} << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (pad) out.append("==");
  } else if (rest == 2) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    if (pad) out.push_back('=');
  }
  return out;
}

int DecodeChar(char c, bool url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

// Decodes unpadded base64 in the given alphabet. Refuses a dangling single
// character and non-zero padding bits, so every byte string has exactly one
// accepted encoding.
absl::StatusOr<std::string> DecodeUnpadded(absl::string_view text, bool url,
                                           absl::string_view what) {
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    int v = DecodeChar(text[i], url);
    if (v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": invalid character at offset ", i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (text.size() % 4 == 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": invalid length ", text.size()));
  }
  if ((acc & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": non-zero trailing bits"));
  }
  return out;
}

}  // namespace

std::string Base64UrlEncode(absl::string_view data) { return Encode(data, kUrlAlphabet, false); }

absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text) {
  return DecodeUnpadded(text, /*url=*/true, "base64url");
}

std::string Base64Encode(absl::string_view data) { return Encode(data, kStdAlphabet, true); }

absl::StatusOr<std::string> Base64Decode(absl::string_view text) {
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  SIGIL_ASSIGN_OR_RETURN(std::string out, DecodeUnpadded(text.substr(0, text.size() - pad),
                                                         /*url=*/false, "base64"));
  if (text.size() % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("base64: length ", text.size(), " is not a multiple of 4"));
  }
  return out;
}

std::string Sha1(absl::string_view data) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(Bytes(data), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

std::string Sha256(absl::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(Bytes(data), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  // Allocation failure here leaves no way to hash anything at all.
  if (ctx_ == nullptr || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
    std::abort();
  }
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256Hasher::Update(absl::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

std::string Sha256Hasher::Finish() {
  unsigned char md[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Sha384(absl::string_view data) {
  unsigned char md[SHA384_DIGEST_LENGTH];
  SHA384(Bytes(data), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

std::string Sha512(absl::string_view data) {
  unsigned char md[SHA512_DIGEST_LENGTH];
  SHA512(Bytes(data), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

std::string HexEncode(absl::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

// ---- PEM (RFC 7468) ----

namespace {

constexpr absl::string_view kBegin = "-----BEGIN ";
constexpr absl::string_view kEnd = "-----END ";
constexpr absl::string_view kDashes = "-----";

// Splits off the next line (without its terminator) from `text`.
absl::string_view NextLine(absl::string_view* text) {
  size_t eol = text->find('\n');
  absl::string_view line = text->substr(0, eol);
  text->remove_prefix(eol == absl::string_view::npos ? text->size() : eol + 1);
  return absl::StripAsciiWhitespace(line);
}

// "-----BEGIN X-----" -> "X"; false when `line` is not such a line.
bool LabelOf(absl::string_view line, absl::string_view prefix, absl::string_view* label) {
  if (!absl::StartsWith(line, prefix) || !absl::EndsWith(line, kDashes) ||
      line.size() < prefix.size() + kDashes.size()) {
    return false;
  }
  *label = line.substr(prefix.size(), line.size() - prefix.size() - kDashes.size());
  return true;
}

}  // namespace

absl::StatusOr<std::vector<PemBlock>> ParsePem(absl::string_view text) {
  std::vector<PemBlock> blocks;
  while (!text.empty()) {
    absl::string_view label;
    if (!LabelOf(NextLine(&text), kBegin, &label)) continue;  // explanatory text
    if (label.empty()) return absl::InvalidArgumentError("PEM: BEGIN line without a label");
    std::string body;
    bool ended = false;
    while (!text.empty()) {
      absl::string_view line = NextLine(&text);
      absl::string_view end_label;
      if (LabelOf(line, kEnd, &end_label)) {
        if (end_label != label) {
          return absl::InvalidArgumentError(absl::StrCat("PEM: block \"", label,
                                                         "\" ends with END \"", end_label, "\""));
        }
        ended = true;
        break;
      }
      if (absl::StartsWith(line, kBegin)) break;
      if (absl::StrContains(line, ':')) {
        return absl::InvalidArgumentError(absl::StrCat(
            "PEM: block \"", label, "\" has RFC 1421 headers, which are not supported"));
      }
      for (char c : line) {
        if (c != ' ' && c != '\t') body.push_back(c);
      }
    }
    if (!ended) {
      return absl::InvalidArgumentError(
          absl::StrCat("PEM: block \"", label, "\" has no END line"));
    }
    absl::StatusOr<std::string> der = Base64Decode(body);
    if (!der.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("PEM: block \"", label, "\": ", der.status().message()));
    }
    if (der->empty()) {
      return absl::InvalidArgumentError(absl::StrCat("PEM: block \"", label, "\" is empty"));
    }
    blocks.push_back(PemBlock{std::string(label), *std::move(der)});
  }
  return blocks;
}

std::string EncodePem(absl::string_view type, absl::string_view der) {
  std::string b64 = Base64Encode(der);
  std::string out;
  out.reserve(b64.size() + b64.size() / 64 + 2 * type.size() + 40);
  absl::StrAppend(&out, kBegin, type, kDashes, "\n");
  for (size_t i = 0; i < b64.size(); i += 64) {
    absl::StrAppend(&out, absl::string_view(b64).substr(i, 64), "\n");
  }
  absl::StrAppend(&out, kEnd, type, kDashes, "\n");
  return out;
}

// ---- ECDSA signature forms ----

namespace {

absl::Status CheckFieldSize(int field_size) {
  if (field_size <= 0 || field_size > 66) {
    return absl::InvalidArgumentError(
        absl::StrCat("ECDSA: field size ", field_size, " out of range (1..66)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EcdsaDerToRaw(absl::string_view der, int field_size) {
  SIGIL_RETURN_IF_ERROR(CheckFieldSize(field_size));
  der::Reader outer(der);
  absl::string_view seq;
  if (!outer.ExpectContents(der::kSequence, &seq) || !outer.empty()) {
    return absl::InvalidArgumentError("ECDSA: signature is not one DER SEQUENCE");
  }
  der::Reader r(seq);
  absl::string_view ints[2];
  for (absl::string_view& v : ints) {
    absl::string_view contents;
    if (!r.ExpectContents(der::kInteger, &contents) || !der::ParseNonNegativeInteger(contents, &v)) {
      return absl::InvalidArgumentError("ECDSA: r and s must be non-negative DER INTEGERs");
    }
    if (v.size() > static_cast<size_t>(field_size)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ECDSA: integer longer than the field size ", field_size));
    }
  }
  if (!r.empty()) return absl::InvalidArgumentError("ECDSA: trailing fields after r and s");
  std::string raw(2 * static_cast<size_t>(field_size), '\0');
  for (int i = 0; i < 2; ++i) {
    size_t end = static_cast<size_t>(field_size) * (i + 1);
    raw.replace(end - ints[i].size(), ints[i].size(), ints[i].data(), ints[i].size());
  }
  return raw;
}

absl::StatusOr<std::string> EcdsaRawToDer(absl::string_view raw, int field_size) {
  SIGIL_RETURN_IF_ERROR(CheckFieldSize(field_size));
  if (raw.size() != 2 * static_cast<size_t>(field_size)) {
    return absl::InvalidArgumentError(absl::StrCat("ECDSA: raw signature is ", raw.size(),
                                                   " bytes, expected ", 2 * field_size));
  }
  std::string seq;
  for (int i = 0; i < 2; ++i) {
    absl::string_view v = raw.substr(static_cast<size_t>(field_size) * i, field_size);
    if (v.find_first_not_of('\0') == absl::string_view::npos) {
      return absl::InvalidArgumentError("ECDSA: r or s is zero");
    }
    seq += der::UnsignedInteger(v);
  }
  return der::Tlv(der::kSequence, seq);
}

// ---- JWK (RFC 7518 §6) ----

namespace {

absl::StatusOr<std::string> JwkMember(absl::string_view name, absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat("jwk: missing \"", name, "\""));
  absl::StatusOr<std::string> bytes = Base64UrlDecode(value);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("jwk: \"", name, "\" is not valid base64url (", bytes.status().message(), ")"));
  }
  return bytes;
}

absl::StatusOr<std::string> BnParam(EVP_PKEY* key, const char* name, int pad_to) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) {
    return absl::InternalError(internal::WithOpenSslErrors(absl::StrCat("reading key ", name)));
  }
  internal::BignumPtr bn(raw);
  int len = pad_to > 0 ? pad_to : BN_num_bytes(bn.get());
  std::string out(static_cast<size_t>(len), '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), len) != len) {
    return absl::InternalError(absl::StrCat("key parameter ", name, " does not fit"));
  }
  return out;
}

}  // namespace

absl::StatusOr<JwkKeyParams> ToJwkParams(const PublicKey& key) {
  JwkKeyParams p;
  switch (key.algorithm()) {
    case KeyAlgorithm::kEc: {
      p.kty = "EC";
      p.crv = key.curve_name();
      SIGIL_ASSIGN_OR_RETURN(std::string x,
                             BnParam(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, key.size_bytes()));
      SIGIL_ASSIGN_OR_RETURN(std::string y,
                             BnParam(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, key.size_bytes()));
      p.x = Base64UrlEncode(x);
      p.y = Base64UrlEncode(y);
      return p;
    }
    case KeyAlgorithm::kRsa: {
      p.kty = "RSA";
      SIGIL_ASSIGN_OR_RETURN(std::string n, BnParam(key.get(), OSSL_PKEY_PARAM_RSA_N, 0));
      SIGIL_ASSIGN_OR_RETURN(std::string e, BnParam(key.get(), OSSL_PKEY_PARAM_RSA_E, 0));
      p.n = Base64UrlEncode(n);
      p.e = Base64UrlEncode(e);
      return p;
    }
    case KeyAlgorithm::kOther:
      break;
  }
  return absl::InvalidArgumentError("jwk: only EC and RSA keys can be expressed as JWK parameters");
}

absl::StatusOr<PublicKey> FromJwkParams(const JwkKeyParams& params) {
  der::SpkiInfo info;
  std::string point, n, e;
  if (params.kty.empty()) return absl::InvalidArgumentError("jwk: missing \"kty\"");
  if (params.kty == "EC") {
    if (params.crv.empty()) return absl::InvalidArgumentError("jwk: missing \"crv\"");
    if (params.crv == "P-256") {
      info.field_size = 32;
    } else if (params.crv == "P-384") {
      info.field_size = 48;
    } else if (params.crv == "P-521") {
      info.field_size = 66;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "jwk: unsupported \"crv\" \"", params.crv, "\" (accepted: P-256, P-384, P-521)"));
    }
    info.algorithm = KeyAlgorithm::kEc;
    info.curve = params.crv;
    SIGIL_ASSIGN_OR_RETURN(std::string x, JwkMember("x", params.x));
    SIGIL_ASSIGN_OR_RETURN(std::string y, JwkMember("y", params.y));
    // RFC 7518 §6.2.1.2/3: full-length coordinates.
    for (const char* name : {"x", "y"}) {
      size_t got = (*name == 'x' ? x : y).size();
      if (got != static_cast<size_t>(info.field_size)) {
        return absl::InvalidArgumentError(absl::StrCat("jwk: \"", name, "\" must be ",
                                                       info.field_size, " bytes for ", params.crv,
                                                       ", got ", got));
      }
    }
    point = absl::StrCat("\x04", x, y);
    info.key_bits = point;
  } else if (params.kty == "RSA") {
    info.algorithm = KeyAlgorithm::kRsa;
    SIGIL_ASSIGN_OR_RETURN(n, JwkMember("n", params.n));
    SIGIL_ASSIGN_OR_RETURN(e, JwkMember("e", params.e));
    info.rsa_n = n;
    info.rsa_e = e;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("jwk: unsupported \"kty\" \"", params.kty, "\" (accepted: EC, RSA)"));
  }
  absl::StatusOr<internal::EvpPkeyPtr> key = internal::PublicEvpFromSpkiInfo(info);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("jwk: ", key.status().message()));
  }
  unsigned char* buf = nullptr;
  int len = i2d_PUBKEY(key->get(), &buf);
  if (len <= 0) {
    return absl::InvalidArgumentError(internal::WithOpenSslErrors("jwk: key cannot be encoded"));
  }
  std::string spki(reinterpret_cast<char*>(buf), static_cast<size_t>(len));
  OPENSSL_free(buf);
  // The same acceptance rules as any SPKI (e.g. RSA sizes).
  absl::Status valid = der::ParseSpki(spki).status();
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat("jwk: ", valid.message()));
  return PublicKey(internal::ShareKey(*std::move(key)), std::move(spki));
}

}  // namespace sigil::crypto
