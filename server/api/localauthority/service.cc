#include "server/api/localauthority/service.h"

#include "spdlog/spdlog.h"

namespace sigil::server::api {
namespace {

namespace lav1 = spire::api::server::localauthority::v1;
constexpr uint32_t kRule = kAllowLocal | kAllowAdmin;

void FillState(const ca::AuthorityState& s, lav1::AuthorityState* out) {
  out->set_authority_id(s.authority_id);
  out->set_expires_at(absl::ToUnixSeconds(s.expires_at));
  out->set_upstream_authority_subject_key_id(s.upstream_authority_id);
}

template <typename Resp>
void FillStates(const ca::AuthorityStates& states, Resp* resp) {
  if (states.active) FillState(*states.active, resp->mutable_active());
  if (states.prepared) FillState(*states.prepared, resp->mutable_prepared());
  if (states.old) FillState(*states.old, resp->mutable_old());
}

// Runs one state-changing operation: authorize, act, log, fill the result.
template <typename Op>
grpc::Status Change(Authenticator* authn, grpc::ServerContext* ctx, const char* method, Op op,
                    lav1::AuthorityState* out) {
  auto caller = Authenticate(authn, *ctx, kRule, method);
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<ca::AuthorityState> state = op();
  if (!state.ok()) return ToGrpc(state.status());
  spdlog::info("{}: authority {} by {}", method, state->authority_id, caller->Describe());
  FillState(*state, out);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status LocalAuthorityService::GetJWTAuthorityState(grpc::ServerContext* ctx,
                                                         const lav1::GetJWTAuthorityStateRequest*,
                                                         lav1::GetJWTAuthorityStateResponse* resp) {
  auto caller = Authenticate(authn_, *ctx, kRule, "GetJWTAuthorityState");
  if (!caller.ok()) return ToGrpc(caller.status());
  FillStates(ca_->GetJwtAuthorityStates(), resp);
  return grpc::Status::OK;
}

grpc::Status LocalAuthorityService::PrepareJWTAuthority(grpc::ServerContext* ctx,
                                                        const lav1::PrepareJWTAuthorityRequest*,
                                                        lav1::PrepareJWTAuthorityResponse* resp) {
  return Change(authn_, ctx, "PrepareJWTAuthority", [&] { return ca_->PrepareJwtAuthority(); },
                resp->mutable_prepared_authority());
}

grpc::Status LocalAuthorityService::ActivateJWTAuthority(grpc::ServerContext* ctx,
                                                         const lav1::ActivateJWTAuthorityRequest* req,
                                                         lav1::ActivateJWTAuthorityResponse* resp) {
  return Change(authn_, ctx, "ActivateJWTAuthority",
                [&] { return ca_->ActivateJwtAuthority(req->authority_id()); },
                resp->mutable_activated_authority());
}

grpc::Status LocalAuthorityService::TaintJWTAuthority(grpc::ServerContext* ctx,
                                                      const lav1::TaintJWTAuthorityRequest* req,
                                                      lav1::TaintJWTAuthorityResponse* resp) {
  return Change(authn_, ctx, "TaintJWTAuthority", [&] { return ca_->TaintJwtAuthority(req->authority_id()); },
                resp->mutable_tainted_authority());
}

grpc::Status LocalAuthorityService::RevokeJWTAuthority(grpc::ServerContext* ctx,
                                                       const lav1::RevokeJWTAuthorityRequest* req,
                                                       lav1::RevokeJWTAuthorityResponse* resp) {
  return Change(authn_, ctx, "RevokeJWTAuthority",
                [&] { return ca_->RevokeJwtAuthority(req->authority_id()); }, resp->mutable_revoked_authority());
}

grpc::Status LocalAuthorityService::GetX509AuthorityState(grpc::ServerContext* ctx,
                                                          const lav1::GetX509AuthorityStateRequest*,
                                                          lav1::GetX509AuthorityStateResponse* resp) {
  auto caller = Authenticate(authn_, *ctx, kRule, "GetX509AuthorityState");
  if (!caller.ok()) return ToGrpc(caller.status());
  FillStates(ca_->GetX509AuthorityStates(), resp);
  return grpc::Status::OK;
}

grpc::Status LocalAuthorityService::PrepareX509Authority(grpc::ServerContext* ctx,
                                                         const lav1::PrepareX509AuthorityRequest*,
                                                         lav1::PrepareX509AuthorityResponse* resp) {
  return Change(authn_, ctx, "PrepareX509Authority", [&] { return ca_->PrepareX509Authority(); },
                resp->mutable_prepared_authority());
}

grpc::Status LocalAuthorityService::ActivateX509Authority(grpc::ServerContext* ctx,
                                                          const lav1::ActivateX509AuthorityRequest* req,
                                                          lav1::ActivateX509AuthorityResponse* resp) {
  return Change(authn_, ctx, "ActivateX509Authority",
                [&] { return ca_->ActivateX509Authority(req->authority_id()); },
                resp->mutable_activated_authority());
}

grpc::Status LocalAuthorityService::TaintX509Authority(grpc::ServerContext* ctx,
                                                       const lav1::TaintX509AuthorityRequest* req,
                                                       lav1::TaintX509AuthorityResponse* resp) {
  return Change(authn_, ctx, "TaintX509Authority",
                [&] { return ca_->TaintX509Authority(req->authority_id()); }, resp->mutable_tainted_authority());
}

grpc::Status LocalAuthorityService::RevokeX509Authority(grpc::ServerContext* ctx,
                                                        const lav1::RevokeX509AuthorityRequest* req,
                                                        lav1::RevokeX509AuthorityResponse* resp) {
  return Change(authn_, ctx, "RevokeX509Authority",
                [&] { return ca_->RevokeX509Authority(req->authority_id()); }, resp->mutable_revoked_authority());
}

}  // namespace sigil::server::api
