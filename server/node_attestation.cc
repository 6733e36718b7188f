#include "server/node_attestation.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"
#include "spiffe/crypto/csr.h"

namespace sigil::server {
namespace {

namespace agentv1 = spire::api::server::agent::v1;

// Relays attestor challenges over the AttestAgent stream.
class StreamChallenger final : public attestors::node::Challenger {
 public:
  explicit StreamChallenger(AttestStream* stream) : stream_(stream) {}

  // attestors::node::Challenger
  absl::StatusOr<std::string> Challenge(const std::string& challenge) override {
    agentv1::AttestAgentResponse resp;
    resp.set_challenge(challenge);
    if (!stream_->Write(resp)) return absl::UnavailableError("agent went away during attestation");
    agentv1::AttestAgentRequest req;
    if (!stream_->Read(&req)) return absl::UnavailableError("agent went away during attestation");
    if (req.step_case() != agentv1::AttestAgentRequest::kChallengeResponse) {
      return absl::InvalidArgumentError("expected a challenge response");
    }
    return req.challenge_response();
  }

 private:
  AttestStream* const stream_;
};

spire::api::types::X509SVID ToProto(const spiffe::SpiffeId& id, const std::vector<crypto::Certificate>& chain) {
  spire::api::types::X509SVID out;
  *out.mutable_id() = apitypes::SpiffeIdToProto(id);
  for (const auto& c : chain) out.add_cert_chain(c.der());
  out.set_expires_at(absl::ToUnixSeconds(chain.front().not_after()));
  return out;
}

}  // namespace

absl::StatusOr<std::vector<crypto::Certificate>> NodeAttestation::MintAgentSvid(const spiffe::SpiffeId& id,
                                                                                const std::string& csr_der) {
  auto csr = crypto::CertificateRequest::FromDer(csr_der);
  if (!csr.ok()) return absl::InvalidArgumentError(absl::StrCat("invalid CSR: ", csr.status().message()));
  ca::X509SvidParams params(csr->spki_der(), id);
  params.ttl = agent_ttl_;
  return ca_->MintX509Svid(params);
}

absl::Status NodeAttestation::Attest(AttestStream* stream) {
  agentv1::AttestAgentRequest req;
  if (!stream->Read(&req)) return absl::InvalidArgumentError("missing attestation parameters");
  if (req.step_case() != agentv1::AttestAgentRequest::kParams) {
    return absl::InvalidArgumentError("the first message must carry params");
  }
  const auto& params = req.params();
  if (params.data().type().empty()) return absl::InvalidArgumentError("missing attestation data type");
  if (params.params().csr().empty()) return absl::InvalidArgumentError("missing CSR");
  const std::string& type = params.data().type();
  attestors::node::ServerAttestor* attestor = attestors_->Find(type);
  if (attestor == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("node attestor \"", type, "\" is not configured on this server"));
  }
  StreamChallenger challenger(stream);
  absl::StatusOr<attestors::node::AttestResult> result = attestor->Attest(params.data().payload(), &challenger);
  if (!result.ok()) {
    spdlog::warn("attestation with {} refused: {}", type, result.status().ToString());
    return result.status();
  }
  const std::string agent_id = result->agent_id.ToString();
  auto existing = store_->GetAgent(agent_id);
  if (existing.ok() && existing->record.agent().banned()) {
    spdlog::warn("attestation refused: agent {} is banned", agent_id);
    return absl::PermissionDeniedError(absl::StrCat("agent ", agent_id, " is banned"));
  }
  if (!existing.ok() && !absl::IsNotFound(existing.status())) return existing.status();

  SIGIL_ASSIGN_OR_RETURN(std::vector<crypto::Certificate> chain,
                         MintAgentSvid(result->agent_id, params.params().csr()));
  AgentRecord record;
  auto* agent = record.mutable_agent();
  *agent->mutable_id() = apitypes::SpiffeIdToProto(result->agent_id);
  agent->set_attestation_type(type);
  agent->set_x509svid_serial_number(chain.front().serial_decimal());
  agent->set_x509svid_expires_at(absl::ToUnixSeconds(chain.front().not_after()));
  agent->set_can_reattest(result->can_reattest);
  for (const auto& sel : result->selectors) {
    auto* s = agent->add_selectors();
    s->set_type(sel.type);
    s->set_value(sel.value);
  }
  // The record read above must not have changed (a concurrent ban wins).
  std::optional<int64_t> expected = existing.ok() ? existing->mod_revision : 0;
  auto put = store_->PutAgent(record, expected);
  if (!put.ok()) {
    if (absl::IsAborted(put.status()) || absl::IsAlreadyExists(put.status())) {
      return absl::AbortedError(absl::StrCat("agent ", agent_id, " changed during attestation; retry"));
    }
    return put.status();
  }
  agentv1::AttestAgentResponse resp;
  *resp.mutable_result()->mutable_svid() = ToProto(result->agent_id, chain);
  resp.mutable_result()->set_reattestable(result->can_reattest);
  if (!stream->Write(resp)) return absl::UnavailableError("agent went away before receiving its SVID");
  spdlog::info("agent {} attested with {} (SVID serial {}, expires {})", agent_id, type,
               chain.front().serial_decimal(), absl::FormatTime(chain.front().not_after()));
  return absl::OkStatus();
}

absl::StatusOr<spire::api::types::X509SVID> NodeAttestation::Renew(const api::Caller& caller,
                                                                   const agentv1::RenewAgentRequest& req) {
  if (req.params().csr().empty()) return absl::InvalidArgumentError("missing CSR");
  SIGIL_ASSIGN_OR_RETURN(std::vector<crypto::Certificate> chain, MintAgentSvid(*caller.id, req.params().csr()));
  std::string serial = chain.front().serial_decimal();
  auto modified = store_->ModifyAgent(caller.id->ToString(), [&](AgentRecord* r) {
    if (r->agent().banned()) return absl::PermissionDeniedError("agent is banned");
    r->set_new_x509svid_serial_number(serial);
    return absl::OkStatus();
  });
  if (!modified.ok()) return modified.status();
  spdlog::info("agent {} renewed its SVID (new serial {})", caller.id->ToString(), serial);
  return ToProto(*caller.id, chain);
}

}  // namespace sigil::server
