#include "server/api/debug/service.h"

#include "apitypes/convert.h"
#include "spiffe/x509svid.h"

namespace sigil::server::api {

grpc::Status DebugService::GetInfo(grpc::ServerContext* ctx, const spire::api::server::debug::v1::GetInfoRequest*,
                                   spire::api::server::debug::v1::GetInfoResponse* resp) {
  auto caller = Authenticate(authn_, *ctx, kAllowLocal | kAllowAdmin, "GetInfo");
  if (!caller.ok()) return ToGrpc(caller.status());
  auto agents = store_->CountAgents({});
  if (!agents.ok()) return ToGrpc(agents.status());
  auto entries = store_->CountEntries({});
  if (!entries.ok()) return ToGrpc(entries.status());
  auto bundles = store_->CountBundles();
  if (!bundles.ok()) return ToGrpc(bundles.status());
  resp->set_uptime(static_cast<int32_t>(absl::ToInt64Seconds(clock_->Now() - started_)));
  resp->set_agents_count(static_cast<int32_t>(*agents));
  resp->set_entries_count(static_cast<int32_t>(*entries));
  // Every stored bundle but our own is a federated one.
  resp->set_federated_bundles_count(static_cast<int32_t>(*bundles > 0 ? *bundles - 1 : 0));
  for (const auto& cert : svid_->chain()) {
    auto* c = resp->add_svid_chain();
    auto uris = cert.uri_sans();
    if (uris.size() == 1) {
      auto id = spiffe::SpiffeId::FromString(uris[0]);
      if (id.ok()) *c->mutable_id() = apitypes::SpiffeIdToProto(*id);
    }
    c->set_expires_at(absl::ToUnixSeconds(cert.not_after()));
    c->set_subject(cert.subject());
  }
  return grpc::Status::OK;
}

}  // namespace sigil::server::api
