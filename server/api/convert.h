#pragma once

// Conversions between SPIRE API types and Sigil's own.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spiffe/id.h"
#include "spire/api/types/spiffeid.pb.h"
#include "spire/api/types/status.pb.h"

namespace sigil::server::api {

// types.SPIFFEID {trust_domain, path} → a validated ID. InvalidArgument
// prefixed with `field` ("invalid spiffe_id: ...").
absl::StatusOr<spiffe::SpiffeId> SpiffeIdFromProto(const spire::api::types::SPIFFEID& id,
                                                   const std::string& field);
spire::api::types::SPIFFEID SpiffeIdToProto(const spiffe::SpiffeId& id);

// A per-item result status as SPIRE's batch RPCs report it.
spire::api::types::Status StatusToProto(const absl::Status& status);

}  // namespace sigil::server::api
