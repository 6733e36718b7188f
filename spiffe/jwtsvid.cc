#include "spiffe/jwtsvid.h"

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "spiffe/crypto/encoding.h"

namespace sigil::spiffe {
namespace {

using Json = nlohmann::json;
// Keeps the header members in the conventional alg, kid, typ order.
using OrderedJson = nlohmann::ordered_json;

constexpr char kAllowedAlgs[] = "RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512";

absl::Status JwtError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("jwtsvid: ", what));
}

std::string JsonReason(const Json::exception& e) {
  absl::string_view what = e.what();
  size_t pos = what.find("] ");
  return std::string(pos == absl::string_view::npos ? what : what.substr(pos + 2));
}

// Parses a JSON object, refusing duplicate member names: RFC 7515 §5.2 lets
// a JWS parser reject them, and doing so removes any doubt about which `alg`
// or `sub` a token carries.
absl::StatusOr<Json> ParseJsonObject(absl::string_view text, absl::string_view what) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  bool has_duplicate = false;
  Json::parser_callback_t on_event = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second &&
            !has_duplicate) {
          has_duplicate = true;
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end(), on_event);
  } catch (const Json::exception& e) {
    return JwtError(absl::StrCat(what, " is not valid JSON: ", JsonReason(e)));
  }
  if (has_duplicate) {
    return JwtError(absl::StrCat(what, " has a duplicate member \"", duplicate, "\""));
  }
  if (!doc.is_object()) return JwtError(absl::StrCat(what, " must be a JSON object"));
  return doc;
}

absl::StatusOr<std::string> DecodeSegment(absl::string_view segment, absl::string_view what) {
  absl::StatusOr<std::string> decoded = crypto::Base64UrlDecode(segment);
  if (!decoded.ok()) {
    return JwtError(absl::StrCat(what, " is not valid base64url: ", decoded.status().message()));
  }
  return decoded;
}

// RFC 7519 §2 NumericDate: seconds since the epoch, possibly fractional.
absl::StatusOr<absl::Time> NumericDate(const Json& value, absl::string_view claim) {
  if (value.is_number_unsigned()) {
    uint64_t seconds = value.get<uint64_t>();
    if (seconds > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InfiniteFuture();
    }
    return absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  }
  if (value.is_number_integer()) return absl::FromUnixSeconds(value.get<int64_t>());
  if (value.is_number_float()) return absl::UnixEpoch() + absl::Seconds(value.get<double>());
  return JwtError(absl::StrCat("\"", claim, "\" claim must be a number (NumericDate)"));
}

// Reads an optional time claim; InfinitePast when absent.
absl::StatusOr<absl::Time> OptionalNumericDate(const Json& claims, const char* claim) {
  auto it = claims.find(claim);
  if (it == claims.end()) return absl::InfinitePast();
  return NumericDate(*it, claim);
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

bool IsEcdsa(crypto::SignatureScheme scheme) {
  return scheme == crypto::SignatureScheme::kEcdsaSha256 ||
         scheme == crypto::SignatureScheme::kEcdsaSha384 ||
         scheme == crypto::SignatureScheme::kEcdsaSha512;
}

// The EC field size (bytes) an ES* alg requires: RFC 7518 §3.4 ties ES256 to
// P-256, ES384 to P-384 and ES512 to P-521.
int EcFieldSizeForScheme(crypto::SignatureScheme scheme) {
  switch (scheme) {
    case crypto::SignatureScheme::kEcdsaSha256:
      return 32;
    case crypto::SignatureScheme::kEcdsaSha384:
      return 48;
    default:
      return 66;
  }
}

std::string DescribeKey(const crypto::PublicKey& key) {
  switch (key.algorithm()) {
    case crypto::KeyAlgorithm::kEc:
      return absl::StrCat("an EC ", key.curve_name(), " key");
    case crypto::KeyAlgorithm::kRsa:
      return absl::StrCat("an RSA-", key.size_bytes() * 8, " key");
    default:
      return "a key of an unsupported type";
  }
}

absl::Status CheckAlgFitsKey(absl::string_view alg, crypto::SignatureScheme scheme,
                             const crypto::PublicKey& key) {
  bool fits = IsEcdsa(scheme) ? key.algorithm() == crypto::KeyAlgorithm::kEc &&
                                    key.size_bytes() == EcFieldSizeForScheme(scheme)
                              : key.algorithm() == crypto::KeyAlgorithm::kRsa;
  if (fits) return absl::OkStatus();
  return JwtError(absl::StrCat("alg \"", alg, "\" cannot be used with ", DescribeKey(key)));
}

// A token split into its parts, with header and claims checked for form
// (everything but the signature and the time and audience rules).
struct ParsedToken {
  absl::string_view signing_input;  // "<header>.<payload>"
  absl::string_view signature_b64;
  crypto::SignatureScheme scheme;
  JwtSvid svid;
  absl::Time not_before;  // InfinitePast when absent
  absl::Time issued_at;   // InfinitePast when absent
};

absl::StatusOr<ParsedToken> ParseToken(absl::string_view token) {
  if (token.empty()) return JwtError("token is empty");
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(token), "{")) {
    return JwtError("JWS JSON serialization is not supported; a JWT-SVID must use the compact "
                    "serialization (JWT-SVID §3)");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() == 5) return JwtError("JWE (encrypted) tokens are not supported");
  if (parts.size() != 3) {
    return JwtError(absl::StrCat("token must be a compact JWS of three dot-separated parts, found ",
                                 parts.size()));
  }

  SIGIL_ASSIGN_OR_RETURN(std::string header_json, DecodeSegment(parts[0], "header"));
  SIGIL_ASSIGN_OR_RETURN(Json header, ParseJsonObject(header_json, "header"));

  // The algorithm is settled before anything else is looked at (JWT-SVID
  // §3.1), so "none", HS* and the like fail the same way whatever follows.
  auto alg = header.find("alg");
  if (alg == header.end()) return JwtError("header has no \"alg\"");
  if (!alg->is_string()) return JwtError("header \"alg\" must be a string");
  std::string alg_name = alg->get<std::string>();
  SIGIL_ASSIGN_OR_RETURN(crypto::SignatureScheme scheme, SchemeForJoseAlg(alg_name));

  auto kid = header.find("kid");
  if (kid == header.end()) return JwtError("header has no \"kid\" (required for JWT-SVIDs)");
  if (!kid->is_string()) return JwtError("header \"kid\" must be a string");
  if (kid->get<std::string>().empty()) return JwtError("header \"kid\" is empty");
  if (auto typ = header.find("typ"); typ != header.end()) {
    if (!typ->is_string() || (*typ != "JWT" && *typ != "JOSE")) {
      return JwtError("header \"typ\" must be \"JWT\" or \"JOSE\" when present (JWT-SVID §2)");
    }
  }
  // RFC 7515 §4.1.11: extensions listed in "crit" must be understood; Sigil
  // understands none.
  if (header.contains("crit")) return JwtError("header \"crit\" is not supported");

  SIGIL_ASSIGN_OR_RETURN(std::string payload_json, DecodeSegment(parts[1], "payload"));
  SIGIL_ASSIGN_OR_RETURN(Json claims, ParseJsonObject(payload_json, "payload"));

  auto sub = claims.find("sub");
  if (sub == claims.end()) return JwtError("token has no \"sub\" claim");
  if (!sub->is_string()) return JwtError("\"sub\" claim must be a string");
  absl::StatusOr<SpiffeId> id = SpiffeId::FromString(sub->get<std::string>());
  if (!id.ok()) {
    return JwtError(absl::StrCat("\"sub\" claim is not a valid SPIFFE ID: ", id.status().message()));
  }

  std::vector<std::string> audience;
  auto aud = claims.find("aud");
  if (aud == claims.end()) return JwtError("token has no \"aud\" claim");
  if (aud->is_string()) {
    audience.push_back(aud->get<std::string>());
  } else if (aud->is_array()) {
    for (const Json& entry : *aud) {
      if (!entry.is_string()) return JwtError("\"aud\" claim array must hold only strings");
      audience.push_back(entry.get<std::string>());
    }
  } else {
    return JwtError("\"aud\" claim must be a string or an array of strings");
  }
  if (audience.empty()) return JwtError("\"aud\" claim is empty");

  auto exp = claims.find("exp");
  if (exp == claims.end()) return JwtError("token has no \"exp\" claim");
  SIGIL_ASSIGN_OR_RETURN(absl::Time expiry, NumericDate(*exp, "exp"));
  SIGIL_ASSIGN_OR_RETURN(absl::Time not_before, OptionalNumericDate(claims, "nbf"));
  SIGIL_ASSIGN_OR_RETURN(absl::Time issued_at, OptionalNumericDate(claims, "iat"));

  return ParsedToken{token.substr(0, parts[0].size() + 1 + parts[1].size()),
                     parts[2],
                     scheme,
                     JwtSvid{std::string(token), *std::move(id), std::move(audience), expiry,
                             kid->get<std::string>(), std::move(alg_name), Dump(claims)},
                     not_before,
                     issued_at};
}

}  // namespace

absl::StatusOr<crypto::SignatureScheme> SchemeForJoseAlg(absl::string_view alg) {
  using S = crypto::SignatureScheme;
  static const std::pair<absl::string_view, S> kAlgs[] = {
      {"RS256", S::kRsaPkcs1Sha256}, {"RS384", S::kRsaPkcs1Sha384}, {"RS512", S::kRsaPkcs1Sha512},
      {"ES256", S::kEcdsaSha256},    {"ES384", S::kEcdsaSha384},    {"ES512", S::kEcdsaSha512},
      {"PS256", S::kRsaPssSha256},   {"PS384", S::kRsaPssSha384},   {"PS512", S::kRsaPssSha512},
  };
  for (const auto& [name, scheme] : kAlgs) {
    if (alg == name) return scheme;
  }
  return JwtError(absl::StrCat("unsupported alg \"", absl::CHexEscape(alg.substr(0, 32)),
                               "\"; JWT-SVIDs allow only ", kAllowedAlgs));
}

absl::StatusOr<std::string> JoseAlgForKey(const crypto::PrivateKey& key) {
  const crypto::PublicKey& pub = key.public_key();
  if (pub.algorithm() == crypto::KeyAlgorithm::kRsa) return std::string("RS256");
  if (pub.algorithm() == crypto::KeyAlgorithm::kEc) {
    switch (pub.size_bytes()) {
      case 32:
        return std::string("ES256");
      case 48:
        return std::string("ES384");
      case 66:
        return std::string("ES512");
      default:
        break;
    }
  }
  return JwtError(absl::StrCat("no JOSE algorithm for ", DescribeKey(pub)));
}

absl::StatusOr<std::string> SignJwtSvid(const JwtSvidClaims& claims, const crypto::PrivateKey& key,
                                        absl::string_view key_id) {
  SIGIL_ASSIGN_OR_RETURN(std::string alg, JoseAlgForKey(key));
  return SignJwtSvid(claims, key, key_id, alg);
}

absl::StatusOr<std::string> SignJwtSvid(const JwtSvidClaims& claims, const crypto::PrivateKey& key,
                                        absl::string_view key_id, absl::string_view alg) {
  SIGIL_ASSIGN_OR_RETURN(crypto::SignatureScheme scheme, SchemeForJoseAlg(alg));
  SIGIL_RETURN_IF_ERROR(CheckAlgFitsKey(alg, scheme, key.public_key()));
  if (key_id.empty()) return JwtError("key ID is required to sign a JWT-SVID");
  if (claims.audience.empty()) return JwtError("a JWT-SVID needs at least one audience");
  for (const std::string& aud : claims.audience) {
    if (aud.empty()) return JwtError("audience values must not be empty");
  }
  if (claims.expiry == absl::InfiniteFuture() || claims.expiry == absl::InfinitePast()) {
    return JwtError("expiry must be a finite time");
  }
  if (claims.issued_at == absl::InfiniteFuture() || claims.issued_at == absl::InfinitePast()) {
    return JwtError("issued_at must be a finite time");
  }

  OrderedJson header = OrderedJson::object();
  header["alg"] = std::string(alg);
  header["kid"] = std::string(key_id);
  header["typ"] = "JWT";
  OrderedJson payload = OrderedJson::object();
  if (claims.audience.size() == 1) {
    payload["aud"] = claims.audience.front();
  } else {
    payload["aud"] = claims.audience;
  }
  payload["exp"] = absl::ToUnixSeconds(claims.expiry);
  payload["iat"] = absl::ToUnixSeconds(claims.issued_at);
  if (!claims.issuer.empty()) payload["iss"] = claims.issuer;
  payload["sub"] = claims.subject.ToString();

  std::string header_json, payload_json;
  try {
    header_json = header.dump();
    payload_json = payload.dump();
  } catch (const OrderedJson::exception& e) {
    // Only invalid UTF-8 in a caller-supplied string gets here.
    return JwtError(absl::StrCat("cannot encode claims: ", JsonReason(e)));
  }
  std::string signing_input =
      absl::StrCat(crypto::Base64UrlEncode(header_json), ".", crypto::Base64UrlEncode(payload_json));
  SIGIL_ASSIGN_OR_RETURN(std::string signature, key.Sign(scheme, signing_input));
  if (IsEcdsa(scheme)) {
    // JOSE carries ECDSA signatures as fixed-size r||s (RFC 7518 §3.4).
    SIGIL_ASSIGN_OR_RETURN(signature,
                           crypto::EcdsaDerToRaw(signature, key.public_key().size_bytes()));
  }
  return absl::StrCat(signing_input, ".", crypto::Base64UrlEncode(signature));
}

absl::StatusOr<JwtSvid> ParseAndValidate(absl::string_view token, const BundleSource& bundles,
                                         absl::string_view audience, absl::Time now) {
  if (audience.empty()) return JwtError("an expected audience is required to validate a token");
  SIGIL_ASSIGN_OR_RETURN(ParsedToken parsed, ParseToken(token));
  JwtSvid& svid = parsed.svid;
  const TrustDomain& td = svid.id.trust_domain();

  // Unknown domain and unknown kid are reported as InvalidArgument: to the
  // caller they are indistinguishable from a forged token.
  absl::StatusOr<Bundle> bundle = bundles.GetBundleForTrustDomain(td);
  if (!bundle.ok()) {
    return JwtError(absl::StrCat("no bundle for trust domain \"", td.name(), "\""));
  }
  const JwtAuthority* authority = bundle->FindJwtAuthority(svid.key_id);
  if (authority == nullptr) {
    return JwtError(absl::StrCat("no JWT authority with key ID \"", absl::CHexEscape(svid.key_id),
                                 "\" in the bundle of trust domain \"", td.name(), "\""));
  }
  SIGIL_RETURN_IF_ERROR(CheckAlgFitsKey(svid.alg, parsed.scheme, authority->public_key));

  SIGIL_ASSIGN_OR_RETURN(std::string signature, DecodeSegment(parsed.signature_b64, "signature"));
  if (IsEcdsa(parsed.scheme)) {
    size_t want = 2 * static_cast<size_t>(authority->public_key.size_bytes());
    if (signature.size() != want) {
      return JwtError(absl::StrCat(svid.alg, " signature must be ", want, " bytes (r||s), got ",
                                   signature.size()));
    }
    absl::StatusOr<std::string> der =
        crypto::EcdsaRawToDer(signature, authority->public_key.size_bytes());
    if (!der.ok()) return JwtError(absl::StrCat("malformed signature: ", der.status().message()));
    signature = *std::move(der);
  }
  if (!authority->public_key.Verify(parsed.scheme, parsed.signing_input, signature).ok()) {
    return JwtError("signature verification failed");
  }

  if (now >= svid.expiry + kJwtLeeway) {
    return JwtError(absl::StrCat("token has expired (exp ", FormatUtc(svid.expiry), ", now ",
                                 FormatUtc(now), ", leeway ", absl::FormatDuration(kJwtLeeway),
                                 ")"));
  }
  if (parsed.not_before != absl::InfinitePast() && now + kJwtLeeway < parsed.not_before) {
    return JwtError("token is not valid yet (nbf is in the future)");
  }
  if (parsed.issued_at != absl::InfinitePast() && parsed.issued_at > now + kJwtLeeway) {
    return JwtError("token was issued in the future (iat)");
  }

  bool audience_ok = false;
  for (const std::string& aud : svid.audience) audience_ok = audience_ok || aud == audience;
  if (!audience_ok) {
    return JwtError(absl::StrCat("expected audience \"", audience, "\" is not in the token's \"aud\" [\"",
                                 absl::StrJoin(svid.audience, "\", \""), "\"]"));
  }
  return std::move(svid);
}

absl::StatusOr<JwtSvid> ParseInsecure(absl::string_view token) {
  SIGIL_ASSIGN_OR_RETURN(ParsedToken parsed, ParseToken(token));
  return std::move(parsed.svid);
}

}  // namespace sigil::spiffe
