#pragma once

// Conversions between the SPIRE API's wire types (spire.api.types) and the
// SPIFFE library's own, for every module that speaks the SPIRE API: the
// server's services and store, its CLI, and the agent. Everything read from
// a message is treated as untrusted input: a conversion that can fail says
// which part is wrong, and never aborts. Thread-safe (no state).

#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spiffe/bundle.h"
#include "spiffe/id.h"
#include "spire/api/types/bundle.pb.h"
#include "spire/api/types/spiffeid.pb.h"
#include "spire/api/types/status.pb.h"

namespace sigil::apitypes {

// A trust domain as the SPIRE API carries it: its name ("example.org") or
// its SPIFFE ID ("spiffe://example.org"). InvalidArgument otherwise, with
// the spiffe library's reason ("trust domain cannot be empty" for ""), or
// `"spiffe://example.org/x" is not a trust domain name (expected e.g.
// "example.org")` for an ID with a path.
absl::StatusOr<spiffe::TrustDomain> ParseTrustDomain(absl::string_view s);

// types.SPIFFEID {trust_domain, path} → a validated SPIFFE ID: the trust
// domain as ParseTrustDomain takes it ("trust domain is missing" when
// empty), the path by the SPIFFE ID rules (empty, or "/"-separated
// non-empty segments). InvalidArgument with the reason alone; callers name
// the field.
absl::StatusOr<spiffe::SpiffeId> SpiffeIdFromProto(const spire::api::types::SPIFFEID& id);
spire::api::types::SPIFFEID SpiffeIdToProto(const spiffe::SpiffeId& id);

// "spiffe://<trust_domain><path>" without validation, for IDs already
// validated (stored ones, index keys) and for display; "" for an unset ID
// (both fields empty).
std::string SpiffeIdString(const spire::api::types::SPIFFEID& id);

// A per-item result status as SPIRE's batch RPCs report it: the canonical
// code's number and the message, "OK" for success.
spire::api::types::Status StatusToProto(const absl::Status& status);

// types.Bundle → spiffe::Bundle. Zero (or negative) expires_at means "no
// expiry"; a zero refresh hint or sequence number means "not set".
// InvalidArgument naming the part that is wrong, prefixed with the bundle:
//   bundle trust_domain "Bad.Org": <reason>
//   bundle example.org: x509_authorities[1]: <reason>
//   bundle example.org: jwt_authorities[0].public_key: <reason>
//   bundle example.org: jwt_authorities[0]: <reason>   (e.g. a kid twice)
//   bundle example.org: refresh_hint must not be negative
// When `tainted_x509_key_ids` is given, it receives the subject key IDs of
// the X.509 authorities marked tainted (those without one are skipped).
absl::StatusOr<spiffe::Bundle> BundleFromProto(
    const spire::api::types::Bundle& proto, std::set<std::string>* tainted_x509_key_ids = nullptr);

// spiffe::Bundle → types.Bundle; BundleFromProto's inverse (no authority is
// marked tainted).
spire::api::types::Bundle BundleToProto(const spiffe::Bundle& bundle);

}  // namespace sigil::apitypes
