// localauthority x509|jwt show | prepare | activate | taint | revoke —
// SPIRE's `spire-server localauthority` commands over the LocalAuthority
// service (manual CA and JWT key rotation).

#include <cctype>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/cli/command.h"

namespace sigil::server::cli {
namespace {

namespace lav1 = ::spire::api::server::localauthority::v1;

using Stub = lav1::LocalAuthority::Stub;

template <typename Request, typename Response>
using Method = grpc::Status (Stub::*)(grpc::ClientContext*, const Request&, Response*);

void PrintAuthority(const lav1::AuthorityState& a, bool with_upstream, std::ostream& out) {
  out << "  Authority ID: " << a.authority_id() << "\n";
  out << "  Expires at: " << GoTimeUtc(absl::FromUnixSeconds(a.expires_at())) << "\n";
  if (!with_upstream) return;
  if (!a.upstream_authority_subject_key_id().empty()) {
    out << "  Upstream authority Subject Key ID: " << a.upstream_authority_subject_key_id()
        << "\n";
  } else {
    out << "  Upstream authority ID: No upstream authority\n";
  }
}

class LocalAuthorityCommand final : public Command {
 public:
  LocalAuthorityCommand(std::string kind, std::string action)
      : kind_(std::move(kind)),
        action_(std::move(action)),
        label_(kind_ == "x509" ? "X.509" : "JWT") {}

  void AddFlags(FlagSet& flags) override {
    if (NeedsAuthorityId()) {
      flags.String("authorityID", &authority_id_, "",
                   absl::StrCat("The authority ID of the ", label_, " authority to ", action_));
    }
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (NeedsAuthorityId() && authority_id_.empty()) {
      return absl::InvalidArgumentError("an authority ID is required");
    }
    const bool x509 = kind_ == "x509";
    if (action_ == "show") {
      return x509 ? Show<lav1::GetX509AuthorityStateRequest, lav1::GetX509AuthorityStateResponse>(
                        &Stub::GetX509AuthorityState, ctx)
                  : Show<lav1::GetJWTAuthorityStateRequest, lav1::GetJWTAuthorityStateResponse>(
                        &Stub::GetJWTAuthorityState, ctx);
    }
    if (action_ == "prepare") {
      return x509 ? Change<lav1::PrepareX509AuthorityRequest>(
                        &Stub::PrepareX509Authority,
                        &lav1::PrepareX509AuthorityResponse::prepared_authority,
                        &lav1::PrepareX509AuthorityResponse::has_prepared_authority, ctx)
                  : Change<lav1::PrepareJWTAuthorityRequest>(
                        &Stub::PrepareJWTAuthority,
                        &lav1::PrepareJWTAuthorityResponse::prepared_authority,
                        &lav1::PrepareJWTAuthorityResponse::has_prepared_authority, ctx);
    }
    if (action_ == "activate") {
      return x509 ? Change<lav1::ActivateX509AuthorityRequest>(
                        &Stub::ActivateX509Authority,
                        &lav1::ActivateX509AuthorityResponse::activated_authority,
                        &lav1::ActivateX509AuthorityResponse::has_activated_authority, ctx)
                  : Change<lav1::ActivateJWTAuthorityRequest>(
                        &Stub::ActivateJWTAuthority,
                        &lav1::ActivateJWTAuthorityResponse::activated_authority,
                        &lav1::ActivateJWTAuthorityResponse::has_activated_authority, ctx);
    }
    if (action_ == "taint") {
      return x509 ? Change<lav1::TaintX509AuthorityRequest>(
                        &Stub::TaintX509Authority,
                        &lav1::TaintX509AuthorityResponse::tainted_authority,
                        &lav1::TaintX509AuthorityResponse::has_tainted_authority, ctx)
                  : Change<lav1::TaintJWTAuthorityRequest>(
                        &Stub::TaintJWTAuthority,
                        &lav1::TaintJWTAuthorityResponse::tainted_authority,
                        &lav1::TaintJWTAuthorityResponse::has_tainted_authority, ctx);
    }
    return x509 ? Change<lav1::RevokeX509AuthorityRequest>(
                      &Stub::RevokeX509Authority,
                      &lav1::RevokeX509AuthorityResponse::revoked_authority,
                      &lav1::RevokeX509AuthorityResponse::has_revoked_authority, ctx)
                : Change<lav1::RevokeJWTAuthorityRequest>(
                      &Stub::RevokeJWTAuthority,
                      &lav1::RevokeJWTAuthorityResponse::revoked_authority,
                      &lav1::RevokeJWTAuthorityResponse::has_revoked_authority, ctx);
  }

 private:
  bool NeedsAuthorityId() const {
    return action_ == "activate" || action_ == "taint" || action_ == "revoke";
  }

  // "prepared", "activated", "tainted", "revoked".
  std::string PastTense() const {
    if (action_ == "prepare") return "prepared";
    if (action_ == "activate") return "activated";
    if (action_ == "taint") return "tainted";
    return "revoked";
  }

  template <typename Request, typename Response>
  absl::Status Show(Method<Request, Response> method, CommandContext& ctx) {
    Request req;
    Response resp;
    grpc::ClientContext call;
    grpc::Status st = (ctx.client().LocalAuthority().*method)(&call, req, &resp);
    if (!st.ok()) {
      return ctx.client().RpcError(st, absl::StrCat("could not get ", label_, " authorities"));
    }
    if (ctx.json()) {
      ctx.PrintJson(resp);
      return absl::OkStatus();
    }
    const bool upstream = kind_ == "x509";
    std::ostream& out = ctx.out();
    auto section = [&](const char* name, bool present, const lav1::AuthorityState& state) {
      out << name << " " << label_ << " authority:\n";
      if (present) {
        PrintAuthority(state, upstream, out);
      } else {
        std::string lower = name;
        lower[0] = static_cast<char>(std::tolower(lower[0]));
        out << "  No " << lower << " " << label_ << " authority found\n";
      }
    };
    section("Active", resp.has_active(), resp.active());
    out << "\n";
    section("Prepared", resp.has_prepared(), resp.prepared());
    out << "\n";
    section("Old", resp.has_old(), resp.old());
    return absl::OkStatus();
  }

  // prepare / activate / taint / revoke: one call, one authority back.
  template <typename Request, typename Response>
  absl::Status Change(Method<Request, Response> method,
                      const lav1::AuthorityState& (Response::*field)() const,
                      bool (Response::*has_field)() const, CommandContext& ctx) {
    Request req;
    if constexpr (!std::is_same_v<Request, lav1::PrepareX509AuthorityRequest> &&
                  !std::is_same_v<Request, lav1::PrepareJWTAuthorityRequest>) {
      req.set_authority_id(authority_id_);
    }
    Response resp;
    grpc::ClientContext call;
    grpc::Status st = (ctx.client().LocalAuthority().*method)(&call, req, &resp);
    if (!st.ok()) {
      return ctx.client().RpcError(st, absl::StrCat("could not ", action_, " ", label_,
                                                    " authority"));
    }
    if (ctx.json()) {
      ctx.PrintJson(resp);
      return absl::OkStatus();
    }
    std::string past = PastTense();
    if (!(resp.*has_field)()) {
      return absl::InternalError(absl::StrCat("internal error: expected to have ", past, " ",
                                              label_, " authority information"));
    }
    std::string heading = past;
    heading[0] = static_cast<char>(std::toupper(heading[0]));
    ctx.out() << heading << " " << label_ << " authority:\n";
    PrintAuthority((resp.*field)(), /*with_upstream=*/false, ctx.out());
    return absl::OkStatus();
  }

  std::string kind_;
  std::string action_;
  std::string label_;
  std::string authority_id_;
};

}  // namespace

std::unique_ptr<Command> NewLocalAuthorityCommand(const std::string& kind,
                                                  const std::string& action) {
  return std::make_unique<LocalAuthorityCommand>(kind, action);
}

}  // namespace sigil::server::cli
