#pragma once

// SPIFFE IDs and trust domains per the SPIFFE-ID standard
// (spiffe/standards/SPIFFE-ID.md), as strict as go-spiffe.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sigil::spiffe {

// A validated trust domain name ("example.org"). Immutable value type.
class TrustDomain {
 public:
  // Accepts a bare name ("example.org") or a SPIFFE ID / trust domain URI
  // ("spiffe://example.org", "spiffe://example.org/path") and keeps the name.
  // Input containing ":/" is parsed as a SPIFFE ID (SpiffeId::FromString
  // errors). InvalidArgument, one distinct message per rule: empty; characters
  // other than [a-z0-9._-] (uppercase, '%' named as such); port or userinfo;
  // longer than 255 bytes.
  static absl::StatusOr<TrustDomain> FromString(absl::string_view s);

  const std::string& name() const { return name_; }
  // "spiffe://<name>" — also the key of bundle maps in the Workload API.
  std::string IdString() const;

  bool operator==(const TrustDomain& o) const { return name_ == o.name_; }
  bool operator!=(const TrustDomain& o) const { return name_ != o.name_; }
  bool operator<(const TrustDomain& o) const { return name_ < o.name_; }

  template <typename H>
  friend H AbslHashValue(H h, const TrustDomain& td) {
    return H::combine(std::move(h), td.name_);
  }

 private:
  friend class SpiffeId;
  explicit TrustDomain(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

// A validated SPIFFE ID ("spiffe://example.org/ns/prod/sa/web"). Immutable.
class SpiffeId {
 public:
  // Parses and validates. InvalidArgument with one distinct message per rule:
  // empty; scheme not exactly "spiffe://"; missing trust domain; trust domain
  // characters; port/userinfo; percent-encoding; query; fragment; empty path
  // segment ("//"); "." or ".." segment; trailing slash; path characters other
  // than [A-Za-z0-9._-]; trust domain > 255 bytes; ID > 2048 bytes.
  static absl::StatusOr<SpiffeId> FromString(absl::string_view s);
  // Builds "spiffe://<td><path>". `path` must be empty or start with "/" and
  // follow the path rules above (InvalidArgument otherwise, also when the
  // whole ID exceeds 2048 bytes).
  static absl::StatusOr<SpiffeId> FromPath(const TrustDomain& td, absl::string_view path);

  const TrustDomain& trust_domain() const { return trust_domain_; }
  // "" or "/a/b".
  const std::string& path() const { return path_; }
  // The full ID.
  std::string ToString() const;

  bool MemberOf(const TrustDomain& td) const { return trust_domain_ == td; }

  bool operator==(const SpiffeId& o) const {
    return trust_domain_ == o.trust_domain_ && path_ == o.path_;
  }
  bool operator!=(const SpiffeId& o) const { return !(*this == o); }
  bool operator<(const SpiffeId& o) const { return ToString() < o.ToString(); }

  template <typename H>
  friend H AbslHashValue(H h, const SpiffeId& id) {
    return H::combine(std::move(h), id.trust_domain_, id.path_);
  }

 private:
  SpiffeId(TrustDomain td, std::string path) : trust_domain_(std::move(td)), path_(std::move(path)) {}
  TrustDomain trust_domain_;
  std::string path_;
};

// Validates a path on its own ("" or "/seg/seg"), with the same messages plus
// "path must be empty or start with '/'". OK or InvalidArgument.
absl::Status ValidatePath(absl::string_view path);

}  // namespace sigil::spiffe
