#include "attestors/node/join_token/agent.h"

namespace sigil::attestors::node::join_token {

absl::StatusOr<std::string> JoinTokenAgentAttestor::Payload() {
  if (token_.empty()) {
    return absl::InvalidArgumentError("nodeattestor(join_token): no join token configured (-joinToken)");
  }
  return token_;
}

absl::StatusOr<std::string> JoinTokenAgentAttestor::Answer(absl::string_view) {
  return absl::InvalidArgumentError("nodeattestor(join_token): the server sent a challenge; join tokens have none");
}

}  // namespace sigil::attestors::node::join_token
