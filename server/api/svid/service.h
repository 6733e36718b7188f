#pragma once

// spire.api.server.svid.v1.SVID: minting for operators (MintX509SVID,
// MintJWTSVID: local or admin) and for agents (BatchNewX509SVID, NewJWTSVID:
// an active agent, only for entries it is authorized for).

#include "ca/manager.h"
#include "common/clock.h"
#include "server/api/auth.h"
#include "server/entry_index.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"

namespace sigil::server::api {

class SvidService final : public spire::api::server::svid::v1::SVID::Service {
 public:
  SvidService(ca::CaManager* ca, EntryIndex* index, Authenticator* authn, const Clock* clock)
      : ca_(ca), index_(index), authn_(authn), clock_(clock) {}

  // spire::api::server::svid::v1::SVID::Service
  grpc::Status MintX509SVID(grpc::ServerContext* ctx,
                            const spire::api::server::svid::v1::MintX509SVIDRequest* req,
                            spire::api::server::svid::v1::MintX509SVIDResponse* resp) override;
  grpc::Status MintJWTSVID(grpc::ServerContext* ctx,
                           const spire::api::server::svid::v1::MintJWTSVIDRequest* req,
                           spire::api::server::svid::v1::MintJWTSVIDResponse* resp) override;
  grpc::Status BatchNewX509SVID(grpc::ServerContext* ctx,
                                const spire::api::server::svid::v1::BatchNewX509SVIDRequest* req,
                                spire::api::server::svid::v1::BatchNewX509SVIDResponse* resp) override;
  grpc::Status NewJWTSVID(grpc::ServerContext* ctx,
                          const spire::api::server::svid::v1::NewJWTSVIDRequest* req,
                          spire::api::server::svid::v1::NewJWTSVIDResponse* resp) override;

 private:
  ca::CaManager* const ca_;
  EntryIndex* const index_;
  Authenticator* const authn_;
  const Clock* const clock_;
};

}  // namespace sigil::server::api
