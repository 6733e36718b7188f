// api fetch x509 | api fetch jwt | api validate jwt — SPIRE's
// `spire-agent api` one-shot commands over the Workload API.

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "node-agent/cli/command.h"
#include "node-agent/cli/x509_response.h"
#include "spiffe/id.h"

namespace sigil::agent::cli {
namespace {

// Reads the first message of a Workload API stream, then cancels the stream
// (the agent would keep it open to push updates).
template <typename Response, typename Start>
absl::Status FirstOfStream(CommandContext& ctx, Start start, Response* response) {
  grpc::ClientContext call;
  ctx.client().PrepareContext(&call);
  auto reader = start(&call);
  if (reader->Read(response)) {
    call.TryCancel();
    (void)reader->Finish();  // CANCELLED, by us.
    return absl::OkStatus();
  }
  grpc::Status st = reader->Finish();
  if (st.ok()) {
    return absl::UnavailableError("the agent closed the stream without sending a response");
  }
  return ctx.client().RpcError(st);
}

class FetchX509Command final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.Bool("silent", &silent_, false, "Suppress stdout");
    flags.String("write", &write_path_, "",
                 "Write SVID data to the specified path (optional; only available for pretty "
                 "output format)");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (ctx.json() && !write_path_.empty()) {
      return absl::InvalidArgumentError("-write is only available for pretty output format");
    }
    ::X509SVIDResponse resp;
    absl::Time start = ctx.clock().Now();
    SIGIL_RETURN_IF_ERROR(FirstOfStream(
        ctx,
        [&ctx](grpc::ClientContext* call) {
          return ctx.client().Workload().FetchX509SVID(call, ::X509SVIDRequest());
        },
        &resp));
    absl::Duration elapsed = ctx.clock().Now() - start;
    if (ctx.json()) {
      ctx.PrintJson(resp);
      return absl::OkStatus();
    }
    SIGIL_ASSIGN_OR_RETURN(ParsedX509Response parsed,
                           ParseX509Response(resp, ctx.clock().Now()));
    if (!silent_) PrintX509Response(parsed, elapsed, ctx.out());
    if (!write_path_.empty()) SIGIL_RETURN_IF_ERROR(WriteX509Response(parsed, write_path_, ctx.out()));
    return absl::OkStatus();
  }

 private:
  bool silent_ = false;
  std::string write_path_;
};

class FetchJwtCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    // SPIRE splits the value on commas; Sigil also accumulates repeated
    // flags instead of keeping only the last one.
    flags.Func("audience", "comma separated list of audience values", "",
               [this](const std::string& value) {
                 for (absl::string_view a : absl::StrSplit(value, ',')) {
                   audience_.emplace_back(a);
                 }
                 return absl::OkStatus();
               });
    flags.String("spiffeID", &spiffe_id_, "", "SPIFFE ID subject (optional)");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (audience_.empty()) return absl::InvalidArgumentError("audience must be specified");
    for (const std::string& a : audience_) {
      if (a.empty()) {
        return absl::InvalidArgumentError(
            "audience must not contain empty values (check for stray commas)");
      }
    }
    if (!spiffe_id_.empty()) {
      absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::FromString(spiffe_id_);
      if (!id.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "-spiffeID ", GoQuote(spiffe_id_), " is not a valid SPIFFE ID: ", id.status().message()));
      }
    }

    // SPIRE asks for the bundles first, then the SVIDs.
    ::JWTBundlesResponse bundles;
    SIGIL_RETURN_IF_ERROR(FirstOfStream(
        ctx,
        [&ctx](grpc::ClientContext* call) {
          return ctx.client().Workload().FetchJWTBundles(call, ::JWTBundlesRequest());
        },
        &bundles));

    ::JWTSVIDRequest req;
    for (const std::string& a : audience_) req.add_audience(a);
    req.set_spiffe_id(spiffe_id_);
    ::JWTSVIDResponse svids;
    grpc::ClientContext call;
    ctx.client().PrepareContext(&call);
    grpc::Status st = ctx.client().Workload().FetchJWTSVID(&call, req, &svids);
    if (!st.ok()) return ctx.client().RpcError(st);

    if (ctx.json()) {
      ctx.out() << ProtosToJson({&svids, &bundles}) << "\n";
      return absl::OkStatus();
    }
    for (const ::JWTSVID& svid : svids.svids()) {
      ctx.out() << "token(" << svid.spiffe_id() << "):\n\t" << svid.svid() << "\n";
      if (!svid.hint().empty()) {
        ctx.out() << "hint(" << svid.spiffe_id() << "):\n\t" << svid.hint() << "\n";
      }
    }
    std::map<std::string, std::string> sorted(bundles.bundles().begin(), bundles.bundles().end());
    for (const auto& [td_id, jwks] : sorted) {
      ctx.out() << "bundle(" << td_id << "):\n\t" << jwks << "\n";
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::string> audience_;
  std::string spiffe_id_;
};

class ValidateJwtCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("audience", &audience_, "", "expected audience value");
    flags.String("svid", &svid_, "", "JWT SVID");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (audience_.empty()) return absl::InvalidArgumentError("audience must be specified");
    if (svid_.empty()) return absl::InvalidArgumentError("svid must be specified");
    ::ValidateJWTSVIDRequest req;
    req.set_audience(audience_);
    req.set_svid(svid_);
    ::ValidateJWTSVIDResponse resp;
    grpc::ClientContext call;
    ctx.client().PrepareContext(&call);
    grpc::Status st = ctx.client().Workload().ValidateJWTSVID(&call, req, &resp);
    if (!st.ok()) {
      if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        return absl::InvalidArgumentError(absl::StrCat("SVID is not valid: ", st.error_message()));
      }
      return ctx.client().RpcError(st, "unable to validate JWT SVID");
    }
    if (ctx.json()) {
      ctx.PrintJson(resp);
      return absl::OkStatus();
    }
    ctx.out() << "SVID is valid.\n";
    ctx.out() << "SPIFFE ID : " << resp.spiffe_id() << "\n";
    ctx.out() << "Claims    : " << ProtoToJson(resp.claims()) << "\n";
    return absl::OkStatus();
  }

 private:
  std::string audience_;
  std::string svid_;
};

}  // namespace

std::unique_ptr<Command> NewFetchX509Command() { return std::make_unique<FetchX509Command>(); }
std::unique_ptr<Command> NewFetchJwtCommand() { return std::make_unique<FetchJwtCommand>(); }
std::unique_ptr<Command> NewValidateJwtCommand() { return std::make_unique<ValidateJwtCommand>(); }

}  // namespace sigil::agent::cli
