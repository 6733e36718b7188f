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
// validating: a token is accepted until exp + kJwtLeeway. go-spiffe (through
// go-jose) allows one minute; Sigil's SVIDs are short-lived, so half that.
inline constexpr absl::Duration kJwtLeeway = absl::Seconds(30);

// JOSE algorithm names accepted for JWT-SVIDs (§3): RS256/384/512,
// ES256/384/512, PS256/384/512 (case-sensitive). Anything else ("none",
// HS256, EdDSA, ...) is InvalidArgument "unsupported alg", and is refused
// before any other processing of the token.
absl::StatusOr<crypto::SignatureScheme> SchemeForJoseAlg(absl::string_view alg);
// The JOSE alg a key signs with by default: ES256 (P-256), ES384 (P-384),
// ES512 (P-521), RS256 (RSA). InvalidArgument for other keys.
absl::StatusOr<std::string> JoseAlgForKey(const crypto::PrivateKey& key);

struct JwtSvidClaims {
  SpiffeId subject;
  std::vector<std::string> audience;
  absl::Time expiry;
  absl::Time issued_at;
  std::string issuer;  // optional (`iss`)
};

// Signs a JWT-SVID: header {alg, kid, typ: "JWT"}, claims {aud, exp, iat,
// iss when non-empty, sub}; times are whole seconds (truncated). `aud` is a
// string when there is one audience and an array otherwise. ES* signatures
// are JOSE's raw r||s. InvalidArgument when `key_id` is empty, the audience
// is empty or holds an empty value, a time is infinite, or claims strings are
// not UTF-8; Internal if signing fails in the library.
// This overload signs with JoseAlgForKey(key).
absl::StatusOr<std::string> SignJwtSvid(const JwtSvidClaims& claims, const crypto::PrivateKey& key,
                                        absl::string_view key_id);
// The same with an explicit `alg`, which must be allowed (SchemeForJoseAlg)
// and fit the key: RS*/PS* need RSA; ES256/384/512 need P-256/P-384/P-521
// (InvalidArgument "alg ... cannot be used with ..." otherwise).
absl::StatusOr<std::string> SignJwtSvid(const JwtSvidClaims& claims, const crypto::PrivateKey& key,
                                        absl::string_view key_id, absl::string_view alg);

// A parsed, validated JWT-SVID.
struct JwtSvid {
  std::string token;
  SpiffeId id;
  std::vector<std::string> audience;
  absl::Time expiry;
  std::string key_id;
  std::string alg;
  // The whole claims object as compact JSON text (for ValidateJWTSVID's
  // `claims` struct).
  std::string claims_json;
};

// Parses and validates `token` (§3-§5), in this order, each failure an
// InvalidArgument "jwtsvid: ..." naming the rule:
//  1. `audience` non-empty (the caller's argument);
//  2. compact JWS: JSON serialization and JWE refused, exactly three parts;
//  3. header base64url JSON object without duplicate members;
//  4. `alg` allowed (SchemeForJoseAlg) — before anything else of the token;
//  5. `kid` a non-empty string; `typ` absent, "JWT" or "JOSE"; no `crit`;
//  6. payload base64url JSON object without duplicate members; `sub` a valid
//     SPIFFE ID; `aud` a string or non-empty array of strings; `exp` present;
//     `exp`/`nbf`/`iat` numbers;
//  7. a bundle for the subject's trust domain and a JWT authority `kid` in it
//     (a caller cannot tell these from forgeries, hence InvalidArgument too);
//  8. `alg` fits the authority's key (ES256 needs P-256, RS*/PS* need RSA);
//     ES* signature exactly 2 x field size bytes; signature verifies;
//  9. not expired (now < exp + kJwtLeeway), `nbf`/`iat` not beyond
//     now + kJwtLeeway;
// 10. `aud` contains `audience`.
// Thread-safe if `bundles` is.
absl::StatusOr<JwtSvid> ParseAndValidate(absl::string_view token, const BundleSource& bundles,
                                         absl::string_view audience, absl::Time now);

// Parses a token without verifying its signature, time claims or audience
// (the agent uses it to read `exp` of tokens it minted itself): steps 2-6
// above. InvalidArgument when the token is not a well-formed JWT-SVID.
absl::StatusOr<JwtSvid> ParseInsecure(absl::string_view token);

}  // namespace sigil::spiffe
