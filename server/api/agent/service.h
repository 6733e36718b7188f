#pragma once

// The Agent service of SPIRE's server API (spire.api.server.agent.v1).
//
// This file implements the administration RPCs, for local callers (admin
// socket) and admin SVIDs: CountAgents, ListAgents, GetAgent, DeleteAgent
// (evict: the agent may attest again), BanAgent, CreateJoinToken.
// AttestAgent, RenewAgent and PostStatus are agent-facing and not
// overridden here (gRPC's default answers UNIMPLEMENTED): the server serves
// them from a subclass, which is why the class is not final and keeps its
// dependencies protected.
//
// Errors: INVALID_ARGUMENT naming the request field ("invalid id: ...",
// "ttl is required, ..."); NOT_FOUND "agent not found"; ALREADY_EXISTS for a
// duplicate join token; PERMISSION_DENIED from the authorization rule.

#include <grpcpp/grpcpp.h>

#include "common/clock.h"
#include "server/api/auth.h"
#include "server/store/store.h"
#include "spiffe/id.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"

namespace sigil::server::api {

// `agent` with only the fields selected by `mask` (nullptr: all of them);
// the id is always kept.
spire::api::types::Agent ApplyAgentMask(const spire::api::types::Agent& agent,
                                        const spire::api::types::AgentMask* mask);

// Parses a ListAgents / CountAgents by_expires_before value: RFC 3339
// ("2026-01-02T15:04:05Z"), or Go's time.Time text form that SPIRE's CLI
// sends ("2026-01-02 15:04:05 +0000 UTC", optionally with fractional
// seconds). INVALID_ARGUMENT otherwise.
absl::StatusOr<absl::Time> ParseExpiresBefore(absl::string_view text);

class AgentService : public spire::api::server::agent::v1::Agent::Service {
 public:
  // The pointers must outlive the service.
  AgentService(Store* store, Authenticator* authn, const Clock* clock, spiffe::TrustDomain td);

  // spire.api.server.agent.v1.Agent (administration)
  grpc::Status CountAgents(grpc::ServerContext* ctx,
                           const spire::api::server::agent::v1::CountAgentsRequest* req,
                           spire::api::server::agent::v1::CountAgentsResponse* resp) override;
  grpc::Status ListAgents(grpc::ServerContext* ctx,
                          const spire::api::server::agent::v1::ListAgentsRequest* req,
                          spire::api::server::agent::v1::ListAgentsResponse* resp) override;
  grpc::Status GetAgent(grpc::ServerContext* ctx,
                        const spire::api::server::agent::v1::GetAgentRequest* req,
                        spire::api::types::Agent* resp) override;
  grpc::Status DeleteAgent(grpc::ServerContext* ctx,
                           const spire::api::server::agent::v1::DeleteAgentRequest* req,
                           google::protobuf::Empty* resp) override;
  grpc::Status BanAgent(grpc::ServerContext* ctx,
                        const spire::api::server::agent::v1::BanAgentRequest* req,
                        google::protobuf::Empty* resp) override;
  grpc::Status CreateJoinToken(grpc::ServerContext* ctx,
                               const spire::api::server::agent::v1::CreateJoinTokenRequest* req,
                               spire::api::types::JoinToken* resp) override;

 protected:
  // The agent ID in `id` (field name `field` for messages): a valid SPIFFE
  // ID of this trust domain in the agent namespace. INVALID_ARGUMENT
  // otherwise.
  absl::StatusOr<spiffe::SpiffeId> AgentIdFromProto(const spire::api::types::SPIFFEID& id,
                                                    bool present, absl::string_view field) const;

  Store* const store_;
  Authenticator* const authn_;
  const Clock* const clock_;
  const spiffe::TrustDomain td_;
};

}  // namespace sigil::server::api
