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
  // Zero (absl::InfinitePast()) when unknown; informational.
  absl::Time expires_at = absl::InfinitePast();
};

class Bundle {
 public:
  explicit Bundle(TrustDomain td) : trust_domain_(std::move(td)) {}

  // Parses a SPIFFE bundle (JWKS JSON) for `td`. Keys with an unknown `use`
  // are ignored, as the standard says; malformed known keys, a missing `keys`
  // member, an x509-svid key without exactly one `x5c` certificate, or a
  // jwt-svid key without `kid` are InvalidArgument naming the key index.
  static absl::StatusOr<Bundle> ParseSpiffeJson(const TrustDomain& td, absl::string_view json);
  // Parses PEM certificates (X.509 authorities only).
  static absl::StatusOr<Bundle> ParseX509Pem(const TrustDomain& td, absl::string_view pem);
  // Parses concatenated DER certificates (X.509 authorities only).
  static absl::StatusOr<Bundle> ParseX509Der(const TrustDomain& td, absl::string_view der);

  // SPIFFE bundle JSON. `spiffe_sequence` and `spiffe_refresh_hint` (seconds)
  // are written when set; `indent` < 0 gives compact output.
  std::string ToSpiffeJson(int indent = -1) const;
  // JWKS JSON holding only the JWT authorities (Workload API FetchJWTBundles).
  std::string ToJwtJwksJson() const;
  std::string X509AuthoritiesPem() const;
  std::string X509AuthoritiesDer() const;

  const TrustDomain& trust_domain() const { return trust_domain_; }
  const std::vector<crypto::Certificate>& x509_authorities() const { return x509_authorities_; }
  const std::vector<JwtAuthority>& jwt_authorities() const { return jwt_authorities_; }
  // nullptr when no authority has that key ID.
  const JwtAuthority* FindJwtAuthority(absl::string_view key_id) const;

  // Adding an authority already present (same DER / same kid) is a no-op;
  // adding a different key under an existing kid is InvalidArgument.
  void AddX509Authority(const crypto::Certificate& cert);
  absl::Status AddJwtAuthority(JwtAuthority authority);

  std::optional<uint64_t> sequence_number() const { return sequence_number_; }
  void set_sequence_number(uint64_t n) { sequence_number_ = n; }
  std::optional<absl::Duration> refresh_hint() const { return refresh_hint_; }
  void set_refresh_hint(absl::Duration d) { refresh_hint_ = d; }

  bool operator==(const Bundle& o) const;

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
  // NotFound when no bundle is known for `td`.
  virtual absl::StatusOr<Bundle> GetBundleForTrustDomain(const TrustDomain& td) const = 0;
};

// A BundleSource over a fixed set of bundles.
class BundleSet final : public BundleSource {
 public:
  void Add(Bundle b) { bundles_.insert_or_assign(b.trust_domain().name(), std::move(b)); }
  absl::StatusOr<Bundle> GetBundleForTrustDomain(const TrustDomain& td) const override;
  const std::map<std::string, Bundle>& bundles() const { return bundles_; }

 private:
  std::map<std::string, Bundle> bundles_;
};

}  // namespace sigil::spiffe
