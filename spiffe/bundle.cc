#include "spiffe/bundle.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "spiffe/crypto/encoding.h"

namespace sigil::spiffe {
namespace {

using Json = nlohmann::json;

constexpr char kUseX509Svid[] = "x509-svid";
constexpr char kUseJwtSvid[] = "jwt-svid";

absl::Status BundleError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("bundle: ", what));
}

absl::Status KeyError(size_t index, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("bundle: keys[", index, "]: ", what));
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the
// position and reason after it are what a reader needs.
std::string JsonReason(const Json::exception& e) {
  absl::string_view what = e.what();
  size_t pos = what.find("] ");
  return std::string(pos == absl::string_view::npos ? what : what.substr(pos + 2));
}

// Reads an optional string member. Absent (or null) leaves `out` empty.
absl::Status OptionalString(const Json& key, size_t index, const char* name, std::string* out) {
  auto it = key.find(name);
  if (it == key.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return KeyError(index, absl::StrCat("\"", name, "\" must be a string"));
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::StatusOr<crypto::JwkKeyParams> ReadJwkParams(const Json& key, size_t index) {
  crypto::JwkKeyParams params;
  SIGIL_RETURN_IF_ERROR(OptionalString(key, index, "kty", &params.kty));
  SIGIL_RETURN_IF_ERROR(OptionalString(key, index, "crv", &params.crv));
  SIGIL_RETURN_IF_ERROR(OptionalString(key, index, "x", &params.x));
  SIGIL_RETURN_IF_ERROR(OptionalString(key, index, "y", &params.y));
  SIGIL_RETURN_IF_ERROR(OptionalString(key, index, "n", &params.n));
  SIGIL_RETURN_IF_ERROR(OptionalString(key, index, "e", &params.e));
  return params;
}

// The members of a JWK describing `key`; empty when the key has no EC/RSA
// JWK form (possible only for a certificate's key, e.g. Ed25519).
Json JwkMembers(const crypto::PublicKey& key) {
  absl::StatusOr<crypto::JwkKeyParams> params = crypto::ToJwkParams(key);
  Json out = Json::object();
  if (!params.ok()) return out;
  out["kty"] = params->kty;
  if (params->kty == "EC") {
    out["crv"] = params->crv;
    out["x"] = params->x;
    out["y"] = params->y;
  } else {
    out["n"] = params->n;
    out["e"] = params->e;
  }
  return out;
}

// The jwt-svid JWK of `authority`: its key's members, "use" and "kid".
Json JwtAuthorityJwk(const JwtAuthority& authority) {
  Json key = JwkMembers(authority.public_key);
  key["use"] = kUseJwtSvid;
  key["kid"] = authority.key_id;
  return key;
}

// An x509-svid JWK may repeat the certificate's public key as JWK parameters
// (go-spiffe and SPIRE write them); when it does they must agree, or a reader
// trusting the parameters and one trusting `x5c` would disagree.
absl::Status CheckParamsMatchCertificate(const crypto::JwkKeyParams& given,
                                         const crypto::Certificate& cert, size_t index) {
  if (given.kty.empty()) return absl::OkStatus();
  absl::StatusOr<crypto::JwkKeyParams> actual = crypto::ToJwkParams(cert.public_key());
  if (!actual.ok()) {
    return KeyError(index, absl::StrCat("\"kty\" is \"", given.kty,
                                        "\" but the x5c certificate's key is neither EC nor RSA"));
  }
  if (given.kty != actual->kty) {
    return KeyError(index, absl::StrCat("\"kty\" is \"", given.kty,
                                        "\" but the x5c certificate holds an ", actual->kty,
                                        " key"));
  }
  const std::pair<const std::string*, const std::string*> members[] = {
      {&given.crv, &actual->crv}, {&given.x, &actual->x}, {&given.y, &actual->y},
      {&given.n, &actual->n},     {&given.e, &actual->e},
  };
  for (const auto& [g, a] : members) {
    if (!g->empty() && *g != *a) {
      return KeyError(index, "key parameters do not match the x5c certificate's public key");
    }
  }
  return absl::OkStatus();
}

absl::Status AddX509Key(const Json& key, size_t index, const crypto::JwkKeyParams& params,
                        Bundle* bundle) {
  auto x5c = key.find("x5c");
  if (x5c == key.end() || x5c->is_null()) {
    return KeyError(index, "x509-svid key has no \"x5c\" member");
  }
  if (!x5c->is_array()) return KeyError(index, "\"x5c\" must be an array");
  if (x5c->size() != 1) {
    return KeyError(index, absl::StrCat("x509-svid key must hold exactly one x5c certificate, got ",
                                        x5c->size()));
  }
  const Json& entry = x5c->front();
  if (!entry.is_string()) return KeyError(index, "\"x5c\" entries must be strings");
  absl::StatusOr<std::string> der = crypto::Base64Decode(entry.get<std::string>());
  if (!der.ok()) {
    return KeyError(index, absl::StrCat("x5c certificate is not valid base64: ",
                                        der.status().message()));
  }
  absl::StatusOr<crypto::Certificate> cert = crypto::Certificate::FromDer(*der);
  if (!cert.ok()) {
    return KeyError(index, absl::StrCat("x5c certificate: ", cert.status().message()));
  }
  SIGIL_RETURN_IF_ERROR(CheckParamsMatchCertificate(params, *cert, index));
  bundle->AddX509Authority(*cert);
  return absl::OkStatus();
}

absl::Status AddJwtKey(const Json& key, size_t index, const crypto::JwkKeyParams& params,
                       Bundle* bundle) {
  std::string kid;
  SIGIL_RETURN_IF_ERROR(OptionalString(key, index, "kid", &kid));
  if (kid.empty()) return KeyError(index, "jwt-svid key has no \"kid\"");
  absl::StatusOr<crypto::PublicKey> public_key = crypto::FromJwkParams(params);
  if (!public_key.ok()) return KeyError(index, public_key.status().message());
  absl::Status added = bundle->AddJwtAuthority(JwtAuthority{kid, *std::move(public_key)});
  if (!added.ok()) return KeyError(index, added.message());
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> NonNegativeInteger(const Json& value, const char* name) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return BundleError(absl::StrCat("\"", name, "\" must be a non-negative integer"));
}

std::string Dump(const Json& j, int indent) {
  // Replace rather than throw on invalid UTF-8 (a kid is caller-supplied).
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

absl::StatusOr<Bundle> Bundle::ParseSpiffeJson(const TrustDomain& td, absl::string_view json) {
  Json doc;
  try {
    doc = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& e) {
    return BundleError(absl::StrCat("malformed JSON: ", JsonReason(e)));
  }
  if (!doc.is_object()) return BundleError("JSON must be an object (a JWK Set)");

  Bundle bundle(td);
  if (auto it = doc.find("spiffe_sequence"); it != doc.end() && !it->is_null()) {
    SIGIL_ASSIGN_OR_RETURN(uint64_t sequence, NonNegativeInteger(*it, "spiffe_sequence"));
    bundle.set_sequence_number(sequence);
  }
  if (auto it = doc.find("spiffe_refresh_hint"); it != doc.end() && !it->is_null()) {
    SIGIL_ASSIGN_OR_RETURN(uint64_t seconds, NonNegativeInteger(*it, "spiffe_refresh_hint"));
    if (seconds > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return BundleError("\"spiffe_refresh_hint\" is out of range");
    }
    bundle.set_refresh_hint(absl::Seconds(static_cast<int64_t>(seconds)));
  }

  auto keys = doc.find("keys");
  // §4.1.3: "keys" MUST be present.
  if (keys == doc.end() || keys->is_null()) return BundleError("missing \"keys\"");
  if (!keys->is_array()) return BundleError("\"keys\" must be an array");
  for (size_t i = 0; i < keys->size(); ++i) {
    const Json& key = (*keys)[i];
    if (!key.is_object()) return KeyError(i, "must be a JSON object");
    std::string use;
    SIGIL_RETURN_IF_ERROR(OptionalString(key, i, "use", &use));
    if (use != kUseX509Svid && use != kUseJwtSvid) continue;  // §4.2.2: ignore unknown uses
    SIGIL_ASSIGN_OR_RETURN(crypto::JwkKeyParams params, ReadJwkParams(key, i));
    // An x509-svid key's certificate defines its key, so a missing `kty` is
    // tolerated there (ToSpiffeJson omits it for certificates whose key has
    // no EC/RSA JWK form); a jwt-svid key is nothing without it.
    if (params.kty.empty() && use == kUseJwtSvid) return KeyError(i, "missing \"kty\"");
    if (!params.kty.empty() && params.kty != "EC" && params.kty != "RSA") {
      continue;  // §4.2.1: ignore unknown key types
    }
    if (use == kUseX509Svid) {
      SIGIL_RETURN_IF_ERROR(AddX509Key(key, i, params, &bundle));
    } else {
      SIGIL_RETURN_IF_ERROR(AddJwtKey(key, i, params, &bundle));
    }
  }
  return bundle;
}

absl::StatusOr<Bundle> Bundle::ParseX509Pem(const TrustDomain& td, absl::string_view pem) {
  Bundle bundle(td);
  if (absl::StripAsciiWhitespace(pem).empty()) return bundle;
  absl::StatusOr<std::vector<crypto::Certificate>> certs = crypto::Certificate::ParsePemChain(pem);
  if (!certs.ok()) return BundleError(certs.status().message());
  for (const crypto::Certificate& cert : *certs) bundle.AddX509Authority(cert);
  return bundle;
}

absl::StatusOr<Bundle> Bundle::ParseX509Der(const TrustDomain& td, absl::string_view der) {
  Bundle bundle(td);
  if (der.empty()) return bundle;
  absl::StatusOr<std::vector<crypto::Certificate>> certs = crypto::Certificate::ParseDerChain(der);
  if (!certs.ok()) return BundleError(certs.status().message());
  for (const crypto::Certificate& cert : *certs) bundle.AddX509Authority(cert);
  return bundle;
}

std::string Bundle::ToSpiffeJson(int indent) const {
  Json keys = Json::array();
  for (const crypto::Certificate& cert : x509_authorities_) {
    Json key = JwkMembers(cert.public_key());
    key["use"] = kUseX509Svid;
    key["x5c"] = Json::array({crypto::Base64Encode(cert.der())});
    keys.push_back(std::move(key));
  }
  for (const JwtAuthority& authority : jwt_authorities_) keys.push_back(JwtAuthorityJwk(authority));
  Json doc = Json::object();
  doc["keys"] = std::move(keys);
  if (sequence_number_.has_value()) doc["spiffe_sequence"] = *sequence_number_;
  if (refresh_hint_.has_value()) {
    doc["spiffe_refresh_hint"] = absl::ToInt64Seconds(*refresh_hint_);
  }
  return Dump(doc, indent);
}

std::string Bundle::ToJwtJwksJson() const {
  Json keys = Json::array();
  for (const JwtAuthority& authority : jwt_authorities_) keys.push_back(JwtAuthorityJwk(authority));
  Json doc = Json::object();
  doc["keys"] = std::move(keys);
  return Dump(doc, -1);
}

std::string Bundle::X509AuthoritiesPem() const { return crypto::ToPem(x509_authorities_); }

std::string Bundle::X509AuthoritiesDer() const { return crypto::ConcatDer(x509_authorities_); }

const JwtAuthority* Bundle::FindJwtAuthority(absl::string_view key_id) const {
  for (const JwtAuthority& authority : jwt_authorities_) {
    if (authority.key_id == key_id) return &authority;
  }
  return nullptr;
}

void Bundle::AddX509Authority(const crypto::Certificate& cert) {
  if (std::find(x509_authorities_.begin(), x509_authorities_.end(), cert) !=
      x509_authorities_.end()) {
    return;
  }
  x509_authorities_.push_back(cert);
}

absl::Status Bundle::AddJwtAuthority(JwtAuthority authority) {
  if (authority.key_id.empty()) {
    return absl::InvalidArgumentError("JWT authority key ID cannot be empty");
  }
  if (const JwtAuthority* existing = FindJwtAuthority(authority.key_id); existing != nullptr) {
    if (existing->public_key == authority.public_key) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "JWT authority key ID \"", authority.key_id, "\" is already used by a different key"));
  }
  jwt_authorities_.push_back(std::move(authority));
  return absl::OkStatus();
}

bool Bundle::operator==(const Bundle& o) const {
  if (trust_domain_ != o.trust_domain_ || sequence_number_ != o.sequence_number_ ||
      refresh_hint_ != o.refresh_hint_ || x509_authorities_.size() != o.x509_authorities_.size() ||
      jwt_authorities_.size() != o.jwt_authorities_.size()) {
    return false;
  }
  // Both lists are free of duplicates (Add* dedupes), so equal sizes plus
  // inclusion is set equality.
  for (const crypto::Certificate& cert : x509_authorities_) {
    if (std::find(o.x509_authorities_.begin(), o.x509_authorities_.end(), cert) ==
        o.x509_authorities_.end()) {
      return false;
    }
  }
  for (const JwtAuthority& authority : jwt_authorities_) {
    const JwtAuthority* other = o.FindJwtAuthority(authority.key_id);
    if (other == nullptr || other->public_key != authority.public_key) return false;
  }
  return true;
}

absl::StatusOr<Bundle> BundleSet::GetBundleForTrustDomain(const TrustDomain& td) const {
  auto it = bundles_.find(td.name());
  if (it == bundles_.end()) {
    return absl::NotFoundError(absl::StrCat("no bundle for trust domain \"", td.name(), "\""));
  }
  return it->second;
}

}  // namespace sigil::spiffe
