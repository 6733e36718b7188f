#include "server/api/authenticator.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "spiffe/x509svid.h"

namespace sigil::server::api {
namespace {

std::string Property(const grpc::AuthContext& auth, const char* name) {
  auto values = auth.FindPropertyValues(name);
  return values.empty() ? "" : std::string(values.front().data(), values.front().size());
}

// The certificates the peer presented, leaf first; empty without a
// certificate. gRPC reports the leaf on its own and the chain in the order
// the TLS stack kept it, so the leaf is put first explicitly.
absl::StatusOr<std::vector<crypto::Certificate>> PeerChain(const grpc::ServerContextBase& ctx) {
  auto auth = ctx.auth_context();
  if (auth == nullptr) return std::vector<crypto::Certificate>{};
  std::string leaf_pem = Property(*auth, "x509_pem_cert");
  if (leaf_pem.empty()) return std::vector<crypto::Certificate>{};
  auto leaf = crypto::Certificate::ParsePemChain(leaf_pem);
  if (!leaf.ok()) return leaf.status();
  std::vector<crypto::Certificate> chain = {leaf->front()};
  std::string chain_pem = Property(*auth, "x509_pem_cert_chain");
  if (!chain_pem.empty()) {
    auto rest = crypto::Certificate::ParsePemChain(chain_pem);
    if (!rest.ok()) return rest.status();
    for (auto& c : *rest) {
      if (c.der() != chain.front().der()) chain.push_back(std::move(c));
    }
  }
  return chain;
}

constexpr size_t kMaxCachedPeers = 10000;

}  // namespace

std::optional<ServerAuthenticator::VerifiedPeer> ServerAuthenticator::VerifyPeer(const grpc::ServerContextBase& ctx) {
  auto auth = ctx.auth_context();
  if (auth == nullptr) return std::nullopt;
  std::string key = Property(*auth, "x509_pem_cert");
  if (key.empty()) return std::nullopt;
  key += Property(*auth, "x509_pem_cert_chain");

  spiffe::Bundle bundle = ca_->LocalBundle();
  const std::vector<crypto::Certificate> roots = bundle.x509_authorities();
  const absl::Time now = clock_->Now();
  {
    absl::MutexLock lock(&cache_mu_);
    if (roots != cache_roots_) {
      cache_.clear();
      cache_roots_ = roots;
    }
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      if (now >= it->second.not_before && now < it->second.not_after) return it->second;
      cache_.erase(it);
    }
  }

  auto chain = PeerChain(ctx);
  if (!chain.ok() || chain->empty()) {
    if (!chain.ok()) {
      spdlog::debug("caller {} presented an unparsable certificate: {}", ctx.peer(), chain.status().ToString());
    }
    return std::nullopt;
  }
  spiffe::BundleSet bundles;
  bundles.Add(std::move(bundle));
  auto id = spiffe::Verify(*chain, bundles, now);
  if (!id.ok()) {
    spdlog::debug("caller {} presented an X509-SVID that does not verify: {}", ctx.peer(), id.status().ToString());
    return std::nullopt;
  }
  const crypto::Certificate& leaf = chain->front();
  VerifiedPeer peer{*id, leaf.serial_decimal(), leaf.not_before(), leaf.not_after()};
  absl::MutexLock lock(&cache_mu_);
  if (roots == cache_roots_) {
    // Bounded: a flood of distinct certificates only costs re-verification.
    if (cache_.size() >= kMaxCachedPeers) cache_.clear();
    cache_.insert_or_assign(std::move(key), peer);
  }
  return peer;
}

absl::StatusOr<Caller> ServerAuthenticator::Authenticate(const grpc::ServerContextBase& ctx) {
  Caller caller;
  if (absl::StartsWith(ctx.peer(), "unix:")) {
    caller.local = true;
    return caller;
  }
  std::optional<VerifiedPeer> peer = VerifyPeer(ctx);
  if (!peer.has_value()) return caller;
  caller.id = peer->id;
  if (absl::StartsWith(peer->id.path(), "/spire/agent/")) {
    absl::Status s = CheckAgent(peer->id, peer->serial_decimal, peer->not_after);
    if (!s.ok()) return s;
    caller.agent = true;
  }
  for (const EntryPtr& e : index_->EntriesBySpiffeId(peer->id.ToString())) {
    if (e->admin()) caller.admin = true;
    if (e->downstream()) caller.downstream = true;
  }
  return caller;
}

absl::Status ServerAuthenticator::CheckAgent(const spiffe::SpiffeId& id, const std::string& serial,
                                             absl::Time not_after) {
  auto stored = store_->GetAgent(id.ToString());
  if (absl::IsNotFound(stored.status())) {
    return absl::PermissionDeniedError(
        absl::StrCat("agent ", id.ToString(), " is not attested (it may have been evicted)"));
  }
  if (!stored.ok()) return stored.status();
  const auto& agent = stored->record.agent();
  if (agent.banned()) {
    return absl::PermissionDeniedError(absl::StrCat("agent ", id.ToString(), " is banned"));
  }
  if (serial == agent.x509svid_serial_number()) return absl::OkStatus();
  if (!serial.empty() && serial == stored->record.new_x509svid_serial_number()) {
    // First use of a renewed SVID: it becomes the agent's only valid one.
    int64_t expires = absl::ToUnixSeconds(not_after);
    auto promoted = store_->ModifyAgent(id.ToString(), [&](AgentRecord* r) {
      if (r->new_x509svid_serial_number() != serial && r->agent().x509svid_serial_number() != serial) {
        return absl::PermissionDeniedError("agent SVID is no longer active");
      }
      r->mutable_agent()->set_x509svid_serial_number(serial);
      r->mutable_agent()->set_x509svid_expires_at(expires);
      r->clear_new_x509svid_serial_number();
      return absl::OkStatus();
    });
    if (!promoted.ok()) return promoted.status();
    spdlog::info("agent {} switched to its renewed SVID (serial {})", id.ToString(), serial);
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("agent ", id.ToString(), " presented an SVID that is not its active one (serial ", serial, ")"));
}

}  // namespace sigil::server::api
