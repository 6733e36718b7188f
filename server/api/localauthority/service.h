#pragma once

// spire.api.server.localauthority.v1.LocalAuthority: forced rotation of the
// X.509 CA and the JWT signing key (prepare, activate, taint, revoke).
// Local or admin callers only.

#include "ca/manager.h"
#include "server/api/auth.h"
#include "spire/api/server/localauthority/v1/localauthority.grpc.pb.h"

namespace sigil::server::api {

class LocalAuthorityService final
    : public spire::api::server::localauthority::v1::LocalAuthority::Service {
 public:
  LocalAuthorityService(ca::CaManager* ca, Authenticator* authn) : ca_(ca), authn_(authn) {}

  // spire::api::server::localauthority::v1::LocalAuthority::Service
#define SIGIL_LA_RPC(Name)                                                                   \
  grpc::Status Name(grpc::ServerContext* ctx,                                                \
                    const spire::api::server::localauthority::v1::Name##Request* req,        \
                    spire::api::server::localauthority::v1::Name##Response* resp) override;
  SIGIL_LA_RPC(GetJWTAuthorityState)
  SIGIL_LA_RPC(PrepareJWTAuthority)
  SIGIL_LA_RPC(ActivateJWTAuthority)
  SIGIL_LA_RPC(TaintJWTAuthority)
  SIGIL_LA_RPC(RevokeJWTAuthority)
  SIGIL_LA_RPC(GetX509AuthorityState)
  SIGIL_LA_RPC(PrepareX509Authority)
  SIGIL_LA_RPC(ActivateX509Authority)
  SIGIL_LA_RPC(TaintX509Authority)
  SIGIL_LA_RPC(RevokeX509Authority)
#undef SIGIL_LA_RPC

 private:
  ca::CaManager* const ca_;
  Authenticator* const authn_;
};

}  // namespace sigil::server::api
