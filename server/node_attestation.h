#pragma once

// AttestAgent and RenewAgent: turns verified node evidence into an agent
// record and an agent X509-SVID.

#include <grpcpp/support/sync_stream.h>

#include "absl/time/time.h"
#include "attestors/node/join_token/server.h"
#include "attestors/node/server_attestor.h"
#include "ca/manager.h"
#include "common/clock.h"
#include "server/api/auth.h"
#include "server/store/store.h"
#include "spire/api/server/agent/v1/agent.pb.h"

namespace sigil::server {

using AttestStream = grpc::ServerReaderWriterInterface<spire::api::server::agent::v1::AttestAgentResponse,
                                                       spire::api::server::agent::v1::AttestAgentRequest>;

class NodeAttestation {
 public:
  // The pointers must outlive this object.
  NodeAttestation(Store* store, ca::CaManager* ca, const attestors::node::ServerAttestorRegistry* attestors,
                  absl::Duration agent_ttl, const Clock* clock)
      : store_(store), ca_(ca), attestors_(attestors), agent_ttl_(agent_ttl), clock_(clock) {}

  // Runs one AttestAgent stream: params (attestation data + CSR), then any
  // challenges the attestor issues, then the result. Refuses banned agents
  // (PermissionDenied), unknown attestor types (FailedPrecondition), and
  // malformed requests (InvalidArgument naming the field).
  absl::Status Attest(AttestStream* stream);

  // RenewAgent for an authenticated agent: mints a new SVID for the CSR's
  // key and records its serial as the agent's next one.
  absl::StatusOr<spire::api::types::X509SVID> Renew(const api::Caller& caller,
                                                    const spire::api::server::agent::v1::RenewAgentRequest& req);

 private:
  absl::StatusOr<std::vector<crypto::Certificate>> MintAgentSvid(const spiffe::SpiffeId& id,
                                                                 const std::string& csr_der);

  Store* const store_;
  ca::CaManager* const ca_;
  const attestors::node::ServerAttestorRegistry* const attestors_;
  const absl::Duration agent_ttl_;
  const Clock* const clock_;
};

// The Store as join_token's token store.
class StoreTokenAdapter final : public attestors::node::join_token::TokenStore {
 public:
  explicit StoreTokenAdapter(Store* store) : store_(store) {}
  // attestors::node::join_token::TokenStore
  absl::Status ConsumeJoinToken(const std::string& token) override {
    return store_->ConsumeJoinToken(token).status();
  }

 private:
  Store* const store_;
};

}  // namespace sigil::server
