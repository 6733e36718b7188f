#pragma once

// Trust bundles per the SPIFFE Trust Domain and Bundle standard
// (spiffe/standards/SPIFFE_Trust_Domain_and_Bundle.md §4): a JWKS whose keys
// carry `use` "x509-svid" (with `x5c`) or "jwt-svid" (with `kid`), plus
// `spiffe_sequence` and `spiffe_refresh_hint`.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/id.h"

namespace sigil::spiffe {

struct JwtAuthority {
  std::string key_id;
  crypto::PublicKey public_key;
  // absl::InfinitePast() when unknown. Informational only: the SPIFFE bundle
  // format does not carry it, so it is neither serialized nor compared.
  absl::Time expires_at = absl::InfinitePast();
};

class Bundle {
 public:
  explicit Bundle(TrustDomain td) : trust_domain_(std::move(td)) {}

  // Parses a SPIFFE bundle (JWKS JSON) for `td`. Keys whose `use` is absent
  // or unknown, and keys of a `kty` other than "EC" and "RSA", are ignored as
  // §4.1.3/§4.2 require (go-spiffe also ignores a missing `use`).
  // InvalidArgument, naming the key index ("keys[2]: ...") where there is one:
  // malformed JSON; not an object; `keys` missing or not an array;
  // `spiffe_sequence` / `spiffe_refresh_hint` not non-negative integers; a
  // key that is not an object, has a member of the wrong type, or (jwt-svid)
  // lacks `kty`;
  // an x509-svid key without exactly one `x5c` certificate (go-spiffe's rule,
  // stricter than X509-SVID §6.2 which ignores such keys), with bad base64
  // or DER, or whose key parameters contradict the certificate; a jwt-svid
  // key without `kid`, with bad key parameters, or reusing a `kid` for a
  // different key.
  static absl::StatusOr<Bundle> ParseSpiffeJson(const TrustDomain& td, absl::string_view json);
  // Parses PEM certificates (X.509 authorities only). Empty (or all
  // whitespace) input gives an empty bundle, as go-spiffe does;
  // InvalidArgument when a block is malformed or no certificate is found.
  static absl::StatusOr<Bundle> ParseX509Pem(const TrustDomain& td, absl::string_view pem);
  // Parses concatenated DER certificates (X.509 authorities only). Empty
  // input gives an empty bundle; InvalidArgument when malformed.
  static absl::StatusOr<Bundle> ParseX509Der(const TrustDomain& td, absl::string_view der);

  // SPIFFE bundle JSON. `spiffe_sequence` and `spiffe_refresh_hint` (seconds)
  // are written when set; `indent` < 0 gives compact output. X.509 keys carry
  // `kty` and the certificate's public key parameters besides `x5c`, as
  // go-spiffe and SPIRE write them.
  std::string ToSpiffeJson(int indent = -1) const;
  // JWKS JSON holding only the JWT authorities, without the spiffe_*
  // members (Workload API FetchJWTBundles).
  std::string ToJwtJwksJson() const;
  std::string X509AuthoritiesPem() const;
  std::string X509AuthoritiesDer() const;

  const TrustDomain& trust_domain() const { return trust_domain_; }
  const std::vector<crypto::Certificate>& x509_authorities() const { return x509_authorities_; }
  const std::vector<JwtAuthority>& jwt_authorities() const { return jwt_authorities_; }
  // nullptr when no authority has that key ID.
  const JwtAuthority* FindJwtAuthority(absl::string_view key_id) const;

  // Adding an authority already present (same DER / same kid and key) is a
  // no-op; an empty kid, or a different key under an existing kid, is
  // InvalidArgument.
  void AddX509Authority(const crypto::Certificate& cert);
  absl::Status AddJwtAuthority(JwtAuthority authority);

  std::optional<uint64_t> sequence_number() const { return sequence_number_; }
  void set_sequence_number(uint64_t n) { sequence_number_ = n; }
  std::optional<absl::Duration> refresh_hint() const { return refresh_hint_; }
  // Kept in whole seconds (truncated), the precision of the JSON format.
  void set_refresh_hint(absl::Duration d) { refresh_hint_ = absl::Trunc(d, absl::Seconds(1)); }

  // Same trust domain, sequence number and refresh hint, and the same sets
  // of X.509 authorities (by DER) and JWT authorities (by kid and key),
  // regardless of order. JwtAuthority::expires_at is not compared.
  bool operator==(const Bundle& o) const;
  bool operator!=(const Bundle& o) const { return !(*this == o); }

 private:
  TrustDomain trust_domain_;
  std::vector<crypto::Certificate> x509_authorities_;
  std::vector<JwtAuthority> jwt_authorities_;
  std::optional<uint64_t> sequence_number_;
  std::optional<absl::Duration> refresh_hint_;
};

// Finds the bundle of a trust domain; implemented by whatever holds bundles.
class BundleSource {
 public:
  virtual ~BundleSource() = default;
  // NotFound when no bundle is known for `td`. Implementations must be
  // thread-safe.
  virtual absl::StatusOr<Bundle> GetBundleForTrustDomain(const TrustDomain& td) const = 0;
};

// A BundleSource over a fixed set of bundles, keyed by trust domain name.
// Not synchronized: fill it, then share it read-only.
class BundleSet final : public BundleSource {
 public:
  // Replaces any bundle of the same trust domain.
  void Add(Bundle b) { bundles_.insert_or_assign(b.trust_domain().name(), std::move(b)); }

  // BundleSource
  absl::StatusOr<Bundle> GetBundleForTrustDomain(const TrustDomain& td) const override;
  const std::map<std::string, Bundle>& bundles() const { return bundles_; }

 private:
  std::map<std::string, Bundle> bundles_;
};

}  // namespace sigil::spiffe
