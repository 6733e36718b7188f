#include "node-agent/agent_identity.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "node-agent/renewal.h"
#include "spdlog/spdlog.h"
#include "spiffe/crypto/csr.h"

namespace sigil::agent {

AgentIdentity::AgentIdentity(AgentStateStore* store, ServerClient* client, SvidCache* cache,
                             attestors::node::AgentAttestor* attestor, AgentIdentityOptions options)
    : store_(store), client_(client), cache_(cache), attestor_(attestor), options_(options) {}

absl::StatusOr<std::pair<crypto::PrivateKey, std::string>> AgentIdentity::NewKeyAndCsr(
    const std::vector<std::string>& uris) const {
  SIGIL_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::Generate(options_.key_type));
  crypto::DistinguishedName subject;
  if (uris.empty()) subject.emplace_back(crypto::NameAttribute::kCommonName, "sigil-agent");
  SIGIL_ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsrDer(key, subject, uris));
  return std::make_pair(std::move(key), std::move(csr));
}

absl::Time AgentIdentity::PickRenewal(const spiffe::X509Svid& svid) {
  const absl::Time nb = svid.chain.front().not_before();
  const absl::Time na = svid.chain.front().not_after();
  std::uniform_real_distribution<double> dist(options_.renew_window_start, options_.renew_window_end);
  return RenewalTime(nb, na, dist(rng_));
}

absl::StatusOr<bool> AgentIdentity::Resume() {
  auto svid = store_->LoadSvid();
  if (absl::IsNotFound(svid.status())) return false;
  if (absl::IsInvalidArgument(svid.status())) {
    spdlog::warn("ignoring the stored agent SVID: {}", std::string(svid.status().message()));
    return false;
  }
  if (!svid.ok()) return svid.status();
  const absl::Time now = options_.clock->Now();
  if (svid->expires_at() <= now) {
    spdlog::warn("the stored agent SVID {} expired at {}; the agent must attest again", svid->id.ToString(),
                 absl::FormatTime(svid->expires_at()));
    return false;
  }
  client_->SetIdentity(*svid);
  absl::MutexLock lock(&mu_);
  renew_at_ = PickRenewal(*svid);
  retry_at_ = absl::InfinitePast();
  failures_ = 0;
  spdlog::info("resuming as {} (stored SVID serial {}, expires {})", svid->id.ToString(),
               svid->chain.front().serial_hex(), absl::FormatTime(svid->expires_at()));
  current_ = std::move(*svid);
  return true;
}

absl::Status AgentIdentity::Adopt(spiffe::X509Svid svid) {
  SIGIL_RETURN_IF_ERROR(store_->SaveSvid(svid));
  client_->SetIdentity(svid);
  renew_at_ = PickRenewal(svid);
  retry_at_ = absl::InfinitePast();
  failures_ = 0;
  current_ = std::move(svid);
  return absl::OkStatus();
}

absl::Status AgentIdentity::Attest() {
  if (attestor_ == nullptr) {
    return absl::FailedPreconditionError(
        "the agent must attest but no node attestor is configured: give a join token (-joinToken) or configure "
        "plugins.NodeAttestor");
  }
  SIGIL_ASSIGN_OR_RETURN(auto key_and_csr, NewKeyAndCsr({}));
  auto& [key, csr] = key_and_csr;
  spdlog::info("attesting to the server with {}", attestor_->name());
  SIGIL_ASSIGN_OR_RETURN(AttestationResult result, client_->AttestAgent(attestor_, csr));
  if (result.chain.front().public_key() != key.public_key()) {
    return absl::InvalidArgumentError("AttestAgent: the agent SVID was issued for another key than the CSR's");
  }
  {
    // Kept at once: evidence such as a join token is single-use, so losing
    // this SVID would leave the node unable to attest again.
    absl::MutexLock lock(&mu_);
    SIGIL_RETURN_IF_ERROR(Adopt(spiffe::X509Svid{result.agent_id, std::move(result.chain), key, ""}));
    spdlog::info("attested as {} (SVID serial {}, expires {})", current_->id.ToString(),
                 current_->chain.front().serial_hex(), absl::FormatTime(current_->expires_at()));
  }
  // The bundle comes over the channel that is now authenticated both ways
  // (the server was verified, or accepted under insecure_bootstrap).
  auto bundle = client_->GetBundle();
  if (!bundle.ok()) {
    spdlog::warn("cannot fetch the trust bundle after attestation ({}); it will arrive with the first sync",
                 bundle.status().ToString());
    return absl::OkStatus();
  }
  std::optional<spiffe::X509Svid> svid = current();
  spiffe::BundleSet bundles;
  bundles.Add(*bundle);
  auto verified = spiffe::Verify(svid->chain, bundles, options_.clock->Now());
  if (!verified.ok()) {
    absl::Status forgotten = Forget();
    if (!forgotten.ok()) spdlog::error("cannot delete the refused agent SVID: {}", forgotten.ToString());
    return absl::InvalidArgumentError(
        absl::StrCat("the agent SVID from AttestAgent does not verify against the server's bundle: ",
                     verified.status().message()));
  }
  SIGIL_RETURN_IF_ERROR(store_->SaveBundle(*bundle));
  cache_->SetBootstrapBundle(*bundle);
  return absl::OkStatus();
}

absl::Status AgentIdentity::RenewIfDue() {
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = options_.clock->Now();
    if (!current_.has_value() || now < renew_at_ || now < retry_at_) return absl::OkStatus();
  }
  return Renew();
}

absl::Status AgentIdentity::Renew() {
  std::optional<spiffe::SpiffeId> id;
  {
    absl::MutexLock lock(&mu_);
    if (!current_.has_value()) return absl::FailedPreconditionError("the agent has no SVID to renew");
    id = current_->id;
  }
  auto attempt = [&]() -> absl::StatusOr<spiffe::X509Svid> {
    SIGIL_ASSIGN_OR_RETURN(auto key_and_csr, NewKeyAndCsr({id->ToString()}));
    auto& [key, csr] = key_and_csr;
    SIGIL_ASSIGN_OR_RETURN(std::vector<crypto::Certificate> chain, client_->RenewAgent(csr));
    auto leaf_id = spiffe::ValidateLeaf(chain.front());
    if (!leaf_id.ok() || *leaf_id != *id) {
      return absl::InvalidArgumentError(absl::StrCat("RenewAgent: the server returned an SVID for ",
                                                     leaf_id.ok() ? leaf_id->ToString() : "an invalid ID",
                                                     ", expected ", id->ToString()));
    }
    if (chain.front().public_key() != key.public_key()) {
      return absl::InvalidArgumentError("RenewAgent: the SVID was issued for another key than the CSR's");
    }
    std::shared_ptr<const spiffe::Bundle> bundle = cache_->bundle();
    if (bundle != nullptr) {
      spiffe::BundleSet bundles;
      bundles.Add(*bundle);
      auto verified = spiffe::Verify(chain, bundles, options_.clock->Now());
      if (!verified.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("RenewAgent: the new SVID does not verify: ", verified.status().message()));
      }
    }
    return spiffe::X509Svid{*id, std::move(chain), std::move(key), ""};
  };
  absl::StatusOr<spiffe::X509Svid> renewed = attempt();
  absl::MutexLock lock(&mu_);
  absl::Status s = renewed.ok() ? Adopt(std::move(*renewed)) : renewed.status();
  if (!s.ok()) {
    failures_++;
    absl::Duration base = options_.initial_backoff;
    for (int i = 1; i < failures_ && base < options_.max_backoff; ++i) base *= 2;
    base = std::min(base, options_.max_backoff);
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    retry_at_ = options_.clock->Now() + base * jitter(rng_);
    spdlog::warn("cannot renew the agent SVID: {}; retrying", s.ToString());
    return s;
  }
  spdlog::info("renewed the agent SVID (serial {}, expires {})", current_->chain.front().serial_hex(),
               absl::FormatTime(current_->expires_at()));
  return absl::OkStatus();
}

absl::Status AgentIdentity::Forget() {
  {
    absl::MutexLock lock(&mu_);
    current_.reset();
    renew_at_ = absl::InfiniteFuture();
  }
  client_->ClearIdentity();
  return store_->DeleteSvid();
}

absl::Time AgentIdentity::NextRenewal() const {
  absl::MutexLock lock(&mu_);
  if (!current_.has_value()) return absl::InfiniteFuture();
  return std::max(renew_at_, retry_at_);
}

std::optional<spiffe::X509Svid> AgentIdentity::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

}  // namespace sigil::agent
