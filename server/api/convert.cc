#include "server/api/convert.h"

#include "absl/strings/str_cat.h"

namespace sigil::server::api {

absl::StatusOr<spiffe::SpiffeId> SpiffeIdFromProto(const spire::api::types::SPIFFEID& id,
                                                   const std::string& field) {
  if (id.trust_domain().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", field, ": trust domain is missing"));
  }
  auto td = spiffe::TrustDomain::FromString(id.trust_domain());
  if (!td.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", field, ": ", td.status().message()));
  }
  if (td->name() != id.trust_domain()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid ", field, ": trust domain must be a bare name, not \"", id.trust_domain(), "\""));
  }
  auto parsed = spiffe::SpiffeId::FromPath(*td, id.path());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", field, ": ", parsed.status().message()));
  }
  return parsed;
}

spire::api::types::SPIFFEID SpiffeIdToProto(const spiffe::SpiffeId& id) {
  spire::api::types::SPIFFEID out;
  out.set_trust_domain(id.trust_domain().name());
  out.set_path(id.path());
  return out;
}

spire::api::types::Status StatusToProto(const absl::Status& status) {
  spire::api::types::Status out;
  out.set_code(static_cast<int32_t>(status.code()));
  out.set_message(std::string(status.ok() ? "OK" : status.message()));
  return out;
}

}  // namespace sigil::server::api
