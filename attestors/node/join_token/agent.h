#pragma once

// join_token, agent half: sends the token; there are no challenges.

#include <string>

#include "attestors/node/agent_attestor.h"

namespace sigil::attestors::node::join_token {

class JoinTokenAgentAttestor final : public AgentAttestor {
 public:
  explicit JoinTokenAgentAttestor(std::string token) : token_(std::move(token)) {}

  // attestors::node::AgentAttestor
  const std::string& name() const override { return name_; }
  absl::StatusOr<std::string> Payload() override;
  absl::StatusOr<std::string> Answer(absl::string_view challenge) override;

 private:
  const std::string name_ = "join_token";
  const std::string token_;
};

}  // namespace sigil::attestors::node::join_token
