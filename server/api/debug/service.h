#pragma once

// spire.api.server.debug.v1.Debug: GetInfo (server SVID chain, uptime,
// counts). Local or admin callers only.

#include "common/clock.h"
#include "server/api/auth.h"
#include "server/server_svid.h"
#include "server/store/store.h"
#include "spire/api/server/debug/v1/debug.grpc.pb.h"

namespace sigil::server::api {

class DebugService final : public spire::api::server::debug::v1::Debug::Service {
 public:
  DebugService(Store* store, const ServerSvid* svid, Authenticator* authn, const Clock* clock,
               absl::Time started)
      : store_(store), svid_(svid), authn_(authn), clock_(clock), started_(started) {}

  // spire::api::server::debug::v1::Debug::Service
  grpc::Status GetInfo(grpc::ServerContext* ctx, const spire::api::server::debug::v1::GetInfoRequest* req,
                       spire::api::server::debug::v1::GetInfoResponse* resp) override;

 private:
  Store* const store_;
  const ServerSvid* const svid_;
  Authenticator* const authn_;
  const Clock* const clock_;
  const absl::Time started_;
};

}  // namespace sigil::server::api
