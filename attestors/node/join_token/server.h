#pragma once

// join_token, server half: the payload is the token; a token is valid once,
// before it expires. The agent ID is spiffe://<td>/spire/agent/join_token/<token>.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "attestors/node/server_attestor.h"
#include "spiffe/id.h"

namespace sigil::attestors::node::join_token {

inline constexpr char kPluginName[] = "join_token";

// What the attestor needs of the server's storage.
class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // Atomically removes `token`. NotFound when unknown (never issued or
  // already used); PermissionDenied when it had expired (it is removed).
  virtual absl::Status ConsumeJoinToken(const std::string& token) = 0;
};

// The agent ID a token yields.
absl::StatusOr<spiffe::SpiffeId> AgentIdForToken(const spiffe::TrustDomain& td, const std::string& token);

class JoinTokenServerAttestor final : public ServerAttestor {
 public:
  JoinTokenServerAttestor(spiffe::TrustDomain td, TokenStore* tokens)
      : td_(std::move(td)), tokens_(tokens) {}

  // attestors::node::ServerAttestor
  const std::string& name() const override { return name_; }
  absl::StatusOr<AttestResult> Attest(absl::string_view payload, Challenger* challenger) override;

 private:
  const std::string name_ = kPluginName;
  const spiffe::TrustDomain td_;
  TokenStore* const tokens_;
};

}  // namespace sigil::attestors::node::join_token
