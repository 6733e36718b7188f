#include "attestors/node/join_token/server.h"

#include "absl/strings/str_cat.h"

namespace sigil::attestors::node::join_token {

absl::StatusOr<spiffe::SpiffeId> AgentIdForToken(const spiffe::TrustDomain& td, const std::string& token) {
  return spiffe::SpiffeId::FromPath(td, absl::StrCat("/spire/agent/join_token/", token));
}

absl::StatusOr<AttestResult> JoinTokenServerAttestor::Attest(absl::string_view payload, Challenger*) {
  std::string token(payload);
  if (token.empty()) {
    return absl::InvalidArgumentError("nodeattestor(join_token): payload is empty; expected a join token");
  }
  absl::StatusOr<spiffe::SpiffeId> id = AgentIdForToken(td_, token);
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("nodeattestor(join_token): token cannot form an agent ID: ", id.status().message()));
  }
  absl::Status s = tokens_->ConsumeJoinToken(token);
  if (absl::IsNotFound(s)) {
    return absl::PermissionDeniedError("nodeattestor(join_token): join token does not exist or has already been used");
  }
  if (absl::IsPermissionDenied(s)) {
    return absl::PermissionDeniedError("nodeattestor(join_token): join token expired");
  }
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("nodeattestor(join_token): ", s.message()));
  }
  AttestResult result{*id, {}, false};
  return result;
}

}  // namespace sigil::attestors::node::join_token
