#pragma once

// JWT-SVIDs per the JWT-SVID standard (spiffe/standards/JWT-SVID.md).

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/key.h"
#include "spiffe/id.h"

namespace sigil::spiffe {

// Clock skew tolerated on `exp` (and `nbf`/`iat` when present) when
// validating; go-spiffe does not document one, SPIRE's validator uses a
// small leeway as well.
inline constexpr absl::Duration kJwtLeeway = absl::Seconds(30);

// JOSE algorithm names accepted for JWT-SVIDs (§3): RS256/384/512,
// ES256/384/512, PS256/384/512. Anything else is refused before any other
// processing of the token.
absl::StatusOr<crypto::SignatureScheme> SchemeForJoseAlg(absl::string_view alg);
// The JOSE alg a key signs with: ES256 (P-256), ES384 (P-384), ES512 (P-521),
// RS256 (RSA). InvalidArgument for other keys.
absl::StatusOr<std::string> JoseAlgForKey(const crypto::PrivateKey& key);

struct JwtSvidClaims {
  SpiffeId subject;
  std::vector<std::string> audience;
  absl::Time expiry;
  absl::Time issued_at;
  std::string issuer;  // optional (`iss`)
};

// Signs a JWT-SVID: header {alg, kid, typ: "JWT"}, claims {sub, aud, exp,
// iat, iss when non-empty}. `aud` is a string when there is one audience and
// an array otherwise.
absl::StatusOr<std::string> SignJwtSvid(const JwtSvidClaims& claims, const crypto::PrivateKey& key,
                                        absl::string_view key_id);

// A parsed, validated JWT-SVID.
struct JwtSvid {
  std::string token;
  SpiffeId id;
  std::vector<std::string> audience;
  absl::Time expiry;
  std::string key_id;
  std::string alg;
  // Every claim as its JSON text, keyed by name (for ValidateJWTSVID's
  // `claims` struct).
  std::string claims_json;
};

// Parses and validates `token` (§3-§5): compact JWS with three segments;
// `alg` allowed (checked first); `kid` required; `typ` absent, "JWT" or
// "JOSE"; `sub` a valid SPIFFE ID; signature verified with the key `kid`
// names in the bundle of the subject's trust domain; `aud` present and
// containing `audience`; `exp` present and not passed (with kJwtLeeway).
// InvalidArgument naming the failed rule; NotFound-style failures (unknown
// trust domain, unknown kid) are InvalidArgument too, as a caller cannot tell
// them from forgeries.
absl::StatusOr<JwtSvid> ParseAndValidate(absl::string_view token, const BundleSource& bundles,
                                         absl::string_view audience, absl::Time now);

// Parses a token without verifying its signature or time claims (the agent
// uses it to read `exp` of tokens it minted itself). InvalidArgument when the
// token is not a well-formed JWT-SVID.
absl::StatusOr<JwtSvid> ParseInsecure(absl::string_view token);

}  // namespace sigil::spiffe
