#pragma once

// SPIRE's x509pop wire format (pkg/common/plugin/x509pop in spiffe/spire),
// shared by the agent and server halves, and the values both derive from a
// certificate (fingerprint, serial number, common name).
//
// Every message is JSON as Go's encoding/json writes it: byte strings are
// standard base64 with padding, absent pointers are `null`, members appear in
// Go's struct order. The exchange is:
//   payload   {"certificates":["<DER leaf>","<DER intermediate>",...]}
//   challenge {"rsa_signature":{"nonce":"<32 bytes>"},"ecdsa_signature":null}
//             (or the ecdsa_signature member, following the leaf's key type)
//   response  {"rsa_signature":{"nonce":"<32 bytes>","signature":"<PSS>"},
//              "ecdsa_signature":null}
//             {"rsa_signature":null,
//              "ecdsa_signature":{"nonce":"<32 bytes>","r":"<r>","s":"<s>"}}
// The agent signs SHA-256(challenge nonce || its own response nonce): RSA
// keys with RSASSA-PSS over SHA-256, ECDSA keys with a plain ECDSA signature
// of that digest whose r and s travel as minimal big-endian integers.
//
// Decoding follows Go where it matters to a peer: unknown members are
// ignored, `null` reads as absent, a JSON syntax error or a member of the
// wrong type (including invalid base64) is an error. Member names are
// matched exactly (Go would also accept other letter cases; SPIRE never
// sends them).
//
// Header-only because both halves (two libraries) use it.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::attestors::node::x509pop {

inline constexpr char kPluginName[] = "x509pop";
// Length of the challenge and response nonces (SPIRE's nonceLen).
inline constexpr size_t kNonceSize = 32;

// AttestationData.payload: the agent's chain, leaf first, DER.
struct AttestationData {
  std::vector<std::string> certificates;
};

struct RsaSignatureChallenge {
  std::string nonce;
};
struct EcdsaSignatureChallenge {
  std::string nonce;
};
// Exactly one member is set when the server made it; a decoded challenge may
// have none or both (the agent decides what it can answer).
struct Challenge {
  std::optional<RsaSignatureChallenge> rsa_signature;
  std::optional<EcdsaSignatureChallenge> ecdsa_signature;
};

struct RsaSignatureResponse {
  std::string nonce;
  std::string signature;
};
struct EcdsaSignatureResponse {
  std::string nonce;
  // Big-endian magnitudes, minimal as Go's big.Int.Bytes() writes them
  // (leading zeros are accepted on decode).
  std::string r;
  std::string s;
};
struct Response {
  std::optional<RsaSignatureResponse> rsa_signature;
  std::optional<EcdsaSignatureResponse> ecdsa_signature;
};

namespace wire_internal {

using Json = nlohmann::json;

inline std::string Bytes(absl::string_view data) { return absl::StrCat("\"", crypto::Base64Encode(data), "\""); }

inline absl::StatusOr<Json> ParseObject(absl::string_view text) {
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    absl::string_view what = e.what();
    size_t pos = what.find("] ");
    return absl::InvalidArgumentError(std::string(pos == absl::string_view::npos ? what : what.substr(pos + 2)));
  }
  if (!doc.is_object() && !doc.is_null()) {
    return absl::InvalidArgumentError(absl::StrCat("expected a JSON object, got ", doc.type_name()));
  }
  return doc;
}

// A Go []byte member: absent or null reads as empty; otherwise a base64
// string.
inline absl::Status ReadBytes(const Json& object, const char* name, std::string* out) {
  out->clear();
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" must be a base64 string, got ", it->type_name()));
  }
  absl::StatusOr<std::string> decoded = crypto::Base64Decode(it->get<std::string>());
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\": ", decoded.status().message()));
  }
  *out = *std::move(decoded);
  return absl::OkStatus();
}

// A Go pointer-to-struct member: absent or null is nullptr, else an object.
inline absl::StatusOr<const Json*> ReadObject(const Json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  if (!it->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" must be an object, got ", it->type_name()));
  }
  return &*it;
}

}  // namespace wire_internal

inline std::string MarshalAttestationData(const AttestationData& data) {
  // Go writes a nil slice as null; a Sigil agent never sends an empty chain.
  if (data.certificates.empty()) return R"({"certificates":null})";
  std::string out = R"({"certificates":[)";
  for (size_t i = 0; i < data.certificates.size(); ++i) {
    if (i > 0) out += ",";
    out += wire_internal::Bytes(data.certificates[i]);
  }
  out += "]}";
  return out;
}

// InvalidArgument naming the problem (JSON syntax, member types, base64).
inline absl::StatusOr<AttestationData> UnmarshalAttestationData(absl::string_view text) {
  using wire_internal::Json;
  absl::StatusOr<Json> doc = wire_internal::ParseObject(text);
  if (!doc.ok()) return doc.status();
  AttestationData data;
  if (doc->is_null()) return data;
  auto it = doc->find("certificates");
  if (it == doc->end() || it->is_null()) return data;
  if (!it->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("\"certificates\" must be an array, got ", it->type_name()));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& item = (*it)[i];
    if (item.is_null()) {
      data.certificates.emplace_back();
      continue;
    }
    if (!item.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"certificates\"[", i, "] must be a base64 string, got ", item.type_name()));
    }
    absl::StatusOr<std::string> der = crypto::Base64Decode(item.get<std::string>());
    if (!der.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("\"certificates\"[", i, "]: ", der.status().message()));
    }
    data.certificates.push_back(*std::move(der));
  }
  return data;
}

inline std::string MarshalChallenge(const Challenge& challenge) {
  std::string out = R"({"rsa_signature":)";
  if (challenge.rsa_signature) {
    absl::StrAppend(&out, R"({"nonce":)", wire_internal::Bytes(challenge.rsa_signature->nonce), "}");
  } else {
    out += "null";
  }
  out += R"(,"ecdsa_signature":)";
  if (challenge.ecdsa_signature) {
    absl::StrAppend(&out, R"({"nonce":)", wire_internal::Bytes(challenge.ecdsa_signature->nonce), "}");
  } else {
    out += "null";
  }
  out += "}";
  return out;
}

inline absl::StatusOr<Challenge> UnmarshalChallenge(absl::string_view text) {
  using wire_internal::Json;
  absl::StatusOr<Json> doc = wire_internal::ParseObject(text);
  if (!doc.ok()) return doc.status();
  Challenge challenge;
  if (doc->is_null()) return challenge;
  absl::StatusOr<const Json*> rsa = wire_internal::ReadObject(*doc, "rsa_signature");
  if (!rsa.ok()) return rsa.status();
  if (*rsa != nullptr) {
    RsaSignatureChallenge c;
    absl::Status s = wire_internal::ReadBytes(**rsa, "nonce", &c.nonce);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("rsa_signature: ", s.message()));
    challenge.rsa_signature = std::move(c);
  }
  absl::StatusOr<const Json*> ec = wire_internal::ReadObject(*doc, "ecdsa_signature");
  if (!ec.ok()) return ec.status();
  if (*ec != nullptr) {
    EcdsaSignatureChallenge c;
    absl::Status s = wire_internal::ReadBytes(**ec, "nonce", &c.nonce);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("ecdsa_signature: ", s.message()));
    challenge.ecdsa_signature = std::move(c);
  }
  return challenge;
}

inline std::string MarshalResponse(const Response& response) {
  using wire_internal::Bytes;
  std::string out = R"({"rsa_signature":)";
  if (response.rsa_signature) {
    absl::StrAppend(&out, R"({"nonce":)", Bytes(response.rsa_signature->nonce), R"(,"signature":)",
                    Bytes(response.rsa_signature->signature), "}");
  } else {
    out += "null";
  }
  out += R"(,"ecdsa_signature":)";
  if (response.ecdsa_signature) {
    absl::StrAppend(&out, R"({"nonce":)", Bytes(response.ecdsa_signature->nonce), R"(,"r":)",
                    Bytes(response.ecdsa_signature->r), R"(,"s":)", Bytes(response.ecdsa_signature->s), "}");
  } else {
    out += "null";
  }
  out += "}";
  return out;
}

inline absl::StatusOr<Response> UnmarshalResponse(absl::string_view text) {
  using wire_internal::Json;
  absl::StatusOr<Json> doc = wire_internal::ParseObject(text);
  if (!doc.ok()) return doc.status();
  Response response;
  if (doc->is_null()) return response;
  absl::StatusOr<const Json*> rsa = wire_internal::ReadObject(*doc, "rsa_signature");
  if (!rsa.ok()) return rsa.status();
  if (*rsa != nullptr) {
    RsaSignatureResponse r;
    absl::Status s = wire_internal::ReadBytes(**rsa, "nonce", &r.nonce);
    if (s.ok()) s = wire_internal::ReadBytes(**rsa, "signature", &r.signature);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("rsa_signature: ", s.message()));
    response.rsa_signature = std::move(r);
  }
  absl::StatusOr<const Json*> ec = wire_internal::ReadObject(*doc, "ecdsa_signature");
  if (!ec.ok()) return ec.status();
  if (*ec != nullptr) {
    EcdsaSignatureResponse r;
    absl::Status s = wire_internal::ReadBytes(**ec, "nonce", &r.nonce);
    if (s.ok()) s = wire_internal::ReadBytes(**ec, "r", &r.r);
    if (s.ok()) s = wire_internal::ReadBytes(**ec, "s", &r.s);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("ecdsa_signature: ", s.message()));
    response.ecdsa_signature = std::move(r);
  }
  return response;
}

// The message both halves sign and verify: challenge nonce || response nonce.
// Signing it under an SHA-256 scheme signs SHA-256 of the concatenation,
// which is SPIRE's combineNonces digest. InvalidArgument ("invalid challenge
// nonce" / "invalid response nonce", SPIRE's words) unless both are
// kNonceSize bytes.
inline absl::StatusOr<std::string> SignedMessage(absl::string_view challenge_nonce, absl::string_view response_nonce) {
  if (challenge_nonce.size() != kNonceSize) return absl::InvalidArgumentError("invalid challenge nonce");
  if (response_nonce.size() != kNonceSize) return absl::InvalidArgumentError("invalid response nonce");
  return absl::StrCat(challenge_nonce, response_nonce);
}

// SPIRE's Fingerprint: lowercase hex SHA-1 of the certificate DER.
inline std::string Fingerprint(const crypto::Certificate& cert) { return crypto::HexEncode(crypto::Sha1(cert.der())); }

// SPIRE's SerialNumberHex: the serial's magnitude as lowercase hex of whole
// bytes ("0a1b2c3d4e5f", not "a1b2c3d4e5f").
inline std::string SerialNumberHex(const crypto::Certificate& cert) {
  std::string hex = cert.serial_hex();
  if (!hex.empty() && hex[0] == '-') hex.erase(0, 1);
  if (hex.size() % 2 != 0) hex.insert(0, 1, '0');
  return hex;
}

// The subject common name as Go's pkix.Name.CommonName holds it: the value
// of the last CN attribute in DER order, "" when there is none. Read from
// the RFC 2253 text of the subject (which lists the last attribute first and
// escapes ",+\"\\<>;", a leading "#" or space, a trailing space and control
// characters as \XX). A CN whose value is not a string type (printed as
// "#<hex DER>") is skipped, as Go skips it.
inline std::string CommonName(const crypto::Certificate& cert) {
  const std::string dn = cert.subject();
  auto hex_value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = absl::ascii_tolower(static_cast<unsigned char>(c));
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  size_t i = 0;
  while (i < dn.size()) {
    // One "TYPE=value" element, up to an unescaped ',' or '+'.
    size_t eq = dn.find('=', i);
    if (eq == std::string::npos) return "";
    const absl::string_view type = absl::string_view(dn).substr(i, eq - i);
    std::string value;
    bool dumped = eq + 1 < dn.size() && dn[eq + 1] == '#';
    size_t j = eq + 1;
    for (; j < dn.size() && dn[j] != ',' && dn[j] != '+'; ++j) {
      if (dn[j] != '\\' || j + 1 >= dn.size()) {
        value.push_back(dn[j]);
        continue;
      }
      int hi = hex_value(dn[j + 1]);
      int lo = j + 2 < dn.size() ? hex_value(dn[j + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        value.push_back(static_cast<char>(hi * 16 + lo));
        j += 2;
      } else {
        value.push_back(dn[j + 1]);
        ++j;
      }
    }
    if (type == "CN" && !dumped) return value;
    i = j + 1;
  }
  return "";
}

}  // namespace sigil::attestors::node::x509pop
