// bundle show | list | set | delete | count — SPIRE's `spire-server bundle`
// commands over the Bundle service.

#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"
#include "common/status_macros.h"
#include "server/cli/bundle_format.h"
#include "server/cli/command.h"
#include "spiffe/crypto/certificate.h"

namespace sigil::server::cli {
namespace {

namespace bundlev1 = ::spire::api::server::bundle::v1;
namespace types = ::spire::api::types;

constexpr int32_t kListPageSize = 500;

void AddFormatFlag(FlagSet& f, std::string* format, const char* what) {
  f.String("format", format, "pem",
           absl::StrCat("The format to ", what,
                        " (only pretty output format supports this flag). Either \"pem\" or "
                        "\"spiffe\"."));
}

class BundleShowCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override { AddFormatFlag(flags, &format_, "show the bundle"); }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    SIGIL_ASSIGN_OR_RETURN(BundleFormat format, ParseBundleFormat(format_));
    bundlev1::GetBundleRequest req;
    types::Bundle bundle;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Bundle().GetBundle(&call, req, &bundle);
    if (!st.ok()) return ctx.client().RpcError(st);
    if (ctx.json()) {
      ctx.PrintJson(bundle);
      return absl::OkStatus();
    }
    return WriteBundle(bundle, format, /*header=*/false, ctx.out());
  }

 private:
  std::string format_;
};

class BundleListCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("id", &id_, "", "SPIFFE ID of the trust domain");
    AddFormatFlag(flags, &format_, "list federated bundles");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    SIGIL_ASSIGN_OR_RETURN(BundleFormat format, ParseBundleFormat(format_));
    if (!id_.empty()) {
      bundlev1::GetFederatedBundleRequest req;
      SIGIL_ASSIGN_OR_RETURN(*req.mutable_trust_domain(), ParseTrustDomainArg(id_));
      types::Bundle bundle;
      grpc::ClientContext call;
      grpc::Status st = ctx.client().Bundle().GetFederatedBundle(&call, req, &bundle);
      if (!st.ok()) return ctx.client().RpcError(st);
      if (ctx.json()) {
        ctx.PrintJson(bundle);
        return absl::OkStatus();
      }
      return WriteBundle(bundle, format, /*header=*/false, ctx.out());
    }

    bundlev1::ListFederatedBundlesRequest req;
    req.set_page_size(kListPageSize);
    bundlev1::ListFederatedBundlesResponse result;
    SIGIL_RETURN_IF_ERROR(ListAllPages(ctx.client(), ctx.client().Bundle(),
                                       &bundlev1::Bundle::Stub::ListFederatedBundles, req, "",
                                       [&](bundlev1::ListFederatedBundlesResponse& page) {
                                         for (types::Bundle& b : *page.mutable_bundles()) {
                                           *result.add_bundles() = std::move(b);
                                         }
                                       }));
    if (ctx.json()) {
      ctx.PrintJson(result);
      return absl::OkStatus();
    }
    for (int i = 0; i < result.bundles_size(); ++i) {
      if (i != 0) ctx.out() << "\n";
      SIGIL_RETURN_IF_ERROR(WriteBundle(result.bundles(i), format, /*header=*/true, ctx.out()));
    }
    return absl::OkStatus();
  }

 private:
  std::string id_;
  std::string format_;
};

class BundleSetCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("id", &id_, "", "SPIFFE ID of the trust domain");
    flags.String("path", &path_, "", "Path to the bundle data (default: standard input)");
    flags.String("format", &format_, "pem",
                 "The format of the bundle data. Either \"pem\" or \"spiffe\".");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (id_.empty()) return absl::InvalidArgumentError("id flag is required");
    SIGIL_ASSIGN_OR_RETURN(BundleFormat format, ParseBundleFormat(format_));
    SIGIL_ASSIGN_OR_RETURN(std::string td_name, ParseTrustDomainArg(id_));
    absl::StatusOr<std::string> data = ReadInput(path_, ctx.in());
    if (!data.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unable to load bundle data: ", data.status().message()));
    }

    types::Bundle bundle;
    if (format == BundleFormat::kPem) {
      absl::StatusOr<std::vector<crypto::Certificate>> certs =
          crypto::Certificate::ParsePemChain(*data);
      if (!certs.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unable to parse bundle data: ", certs.status().message()));
      }
      bundle.set_trust_domain(td_name);
      for (const crypto::Certificate& cert : *certs) {
        bundle.add_x509_authorities()->set_asn1(cert.der());
      }
    } else {
      // ParseTrustDomainArg validated the name already.
      absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::FromString(td_name);
      if (!td.ok()) return td.status();
      absl::StatusOr<spiffe::Bundle> parsed = spiffe::Bundle::ParseSpiffeJson(*td, *data);
      if (!parsed.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unable to parse to spiffe bundle: ", parsed.status().message()));
      }
      bundle = apitypes::BundleToProto(*parsed);
    }

    bundlev1::BatchSetFederatedBundleRequest req;
    *req.add_bundle() = std::move(bundle);
    bundlev1::BatchSetFederatedBundleResponse resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Bundle().BatchSetFederatedBundle(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st, "failed to set federated bundle");
    if (resp.results_size() != 1) {
      return absl::InternalError(
          absl::StrCat("server returned ", resp.results_size(), " results for 1 bundle"));
    }
    if (ctx.json()) ctx.PrintJson(resp);
    const types::Status& status = resp.results(0).status();
    if (status.code() != 0) {
      return absl::AbortedError(
          absl::StrCat("failed to set federated bundle: ", status.message()));
    }
    if (!ctx.json()) ctx.out() << "bundle set.\n";
    return absl::OkStatus();
  }

 private:
  std::string id_;
  std::string path_;
  std::string format_;
};

class BundleDeleteCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("id", &id_, "", "SPIFFE ID of the trust domain");
    flags.String("mode", &mode_, "restrict",
                 "Deletion mode: one of restrict, delete, or dissociate");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (id_.empty()) return absl::InvalidArgumentError("id is required");
    bundlev1::BatchDeleteFederatedBundleRequest req;
    if (mode_.empty() || mode_ == "restrict") {
      req.set_mode(bundlev1::BatchDeleteFederatedBundleRequest::RESTRICT);
    } else if (mode_ == "delete") {
      req.set_mode(bundlev1::BatchDeleteFederatedBundleRequest::DELETE);
    } else if (mode_ == "dissociate") {
      req.set_mode(bundlev1::BatchDeleteFederatedBundleRequest::DISSOCIATE);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unsupported mode ", GoQuote(mode_), ": use restrict, delete or dissociate"));
    }
    SIGIL_ASSIGN_OR_RETURN(std::string td_name, ParseTrustDomainArg(id_));
    req.add_trust_domains(td_name);
    bundlev1::BatchDeleteFederatedBundleResponse resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Bundle().BatchDeleteFederatedBundle(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st, "failed to delete federated bundle");
    if (resp.results_size() != 1) {
      return absl::InternalError(
          absl::StrCat("server returned ", resp.results_size(), " results for 1 bundle"));
    }
    if (ctx.json()) ctx.PrintJson(resp);
    const auto& result = resp.results(0);
    if (result.status().code() != 0) {
      return absl::AbortedError(absl::StrCat("failed to delete federated bundle ",
                                             GoQuote(result.trust_domain()), ": ",
                                             result.status().message()));
    }
    if (!ctx.json()) ctx.out() << "bundle deleted.\n";
    return absl::OkStatus();
  }

 private:
  std::string id_;
  std::string mode_;
};

class BundleCountCommand final : public Command {
 public:
  void AddFlags(FlagSet&) override {}

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    bundlev1::CountBundlesRequest req;
    bundlev1::CountBundlesResponse resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Bundle().CountBundles(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st);
    if (ctx.json()) {
      ctx.PrintJson(resp);
    } else {
      ctx.out() << Pluralize(resp.count(), "bundle", "bundles") << "\n";
    }
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<Command> NewBundleShowCommand() { return std::make_unique<BundleShowCommand>(); }
std::unique_ptr<Command> NewBundleListCommand() { return std::make_unique<BundleListCommand>(); }
std::unique_ptr<Command> NewBundleSetCommand() { return std::make_unique<BundleSetCommand>(); }
std::unique_ptr<Command> NewBundleDeleteCommand() { return std::make_unique<BundleDeleteCommand>(); }
std::unique_ptr<Command> NewBundleCountCommand() { return std::make_unique<BundleCountCommand>(); }

}  // namespace sigil::server::cli
