#include "server/api/auth.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sigil::server::api {

std::string Caller::Describe() const {
  if (local) return "local admin";
  std::vector<std::string> kinds;
  if (admin) kinds.push_back("admin");
  if (agent) kinds.push_back("agent");
  if (downstream) kinds.push_back("downstream");
  if (kinds.empty()) kinds.push_back("anonymous");
  std::string who = absl::StrJoin(kinds, "+");
  if (id.has_value()) absl::StrAppend(&who, " ", id->ToString());
  return who;
}

absl::Status Authorize(const Caller& caller, uint32_t allowed, const char* method) {
  if ((allowed & kAllowAny) != 0) return absl::OkStatus();
  if (caller.local && (allowed & kAllowLocal) != 0) return absl::OkStatus();
  if (caller.admin && (allowed & kAllowAdmin) != 0) return absl::OkStatus();
  if (caller.agent && (allowed & kAllowAgent) != 0) return absl::OkStatus();
  if (caller.downstream && (allowed & kAllowDownstream) != 0) return absl::OkStatus();
  std::vector<std::string> need;
  if (allowed & kAllowLocal) need.push_back("a local caller");
  if (allowed & kAllowAdmin) need.push_back("an admin X509-SVID");
  if (allowed & kAllowAgent) need.push_back("an active agent X509-SVID");
  if (allowed & kAllowDownstream) need.push_back("a downstream X509-SVID");
  return absl::PermissionDeniedError(absl::StrCat(method, ": caller (", caller.Describe(),
                                                  ") is not authorized; requires ",
                                                  absl::StrJoin(need, " or ")));
}

absl::StatusOr<Caller> Authenticate(Authenticator* authn, const grpc::ServerContextBase& ctx,
                                    uint32_t allowed, const char* method) {
  absl::StatusOr<Caller> caller = authn->Authenticate(ctx);
  if (!caller.ok()) return caller.status();
  absl::Status s = Authorize(*caller, allowed, method);
  if (!s.ok()) return s;
  return caller;
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace sigil::server::api
