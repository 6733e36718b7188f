#pragma once

// The agent half of node attestation: produces the evidence sent in
// AttestAgent and answers the server attestor's challenges.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sigil::attestors::node {

class AgentAttestor {
 public:
  virtual ~AgentAttestor() = default;
  // SPIRE's plugin name; also AttestationData.type.
  virtual const std::string& name() const = 0;
  // AttestationData.payload. Errors are prefixed "nodeattestor(<name>): ".
  virtual absl::StatusOr<std::string> Payload() = 0;
  // The response to one server challenge. InvalidArgument for a challenge
  // this attestor cannot answer.
  virtual absl::StatusOr<std::string> Answer(absl::string_view challenge) = 0;
};

}  // namespace sigil::attestors::node
