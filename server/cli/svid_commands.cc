// x509 mint | jwt mint — SPIRE's `spire-server x509 mint` and `jwt mint`
// over the SVID service: SVIDs for arbitrary SPIFFE IDs, signed by the
// server without a registration entry (admin use, testing).

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "apitypes/convert.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "server/cli/command.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/key.h"

namespace sigil::server::cli {
namespace {

constexpr absl::Duration kTtlSlack = absl::Seconds(5);


namespace bundlev1 = ::spire::api::server::bundle::v1;
namespace svidv1 = ::spire::api::server::svid::v1;
namespace types = ::spire::api::types;

// The TTL in whole seconds, rounded up as SPIRE does.
absl::StatusOr<int32_t> TtlSeconds(absl::Duration ttl) {
  if (ttl < absl::ZeroDuration()) return absl::InvalidArgumentError("ttl must not be negative");
  int64_t seconds = absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1)));
  if (seconds > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl is too large: at most ", std::numeric_limits<int32_t>::max(), "s"));
  }
  return static_cast<int32_t>(seconds);
}

std::string Rfc3339Utc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// Go's filepath.Join for the two-part case the commands need.
std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return absl::EndsWith(dir, "/") ? dir + name : absl::StrCat(dir, "/", name);
}

class X509MintCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("spiffeID", &spiffe_id_, "", "SPIFFE ID of the X509-SVID");
    flags.Duration("ttl", &ttl_, absl::ZeroDuration(), "TTL of the X509-SVID");
    flags.StringList("dns", &dns_names_,
                     "DNS name that will be included in SVID. Can be used more than once.");
    flags.String("write", &write_, "", "Directory to write output to instead of stdout");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (spiffe_id_.empty()) return absl::InvalidArgumentError("spiffeID must be specified");
    SIGIL_ASSIGN_OR_RETURN(types::SPIFFEID id, ParseSpiffeIdArg("SPIFFE ID", spiffe_id_));
    SIGIL_ASSIGN_OR_RETURN(int32_t ttl_seconds, TtlSeconds(ttl_));
    absl::StatusOr<crypto::PrivateKey> key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
    if (!key.ok()) {
      return absl::InternalError(absl::StrCat("unable to generate key: ", key.status().message()));
    }
    // The server takes the DNS SANs from the CSR, as SPIRE's does.
    absl::StatusOr<std::string> csr =
        crypto::CreateCsrDer(*key, {}, {apitypes::SpiffeIdString(id)}, dns_names_);
    if (!csr.ok()) {
      return absl::InternalError(absl::StrCat("unable to generate CSR: ", csr.status().message()));
    }

    svidv1::MintX509SVIDRequest req;
    req.set_csr(*csr);
    req.set_ttl(ttl_seconds);
    svidv1::MintX509SVIDResponse resp;
    {
      grpc::ClientContext call;
      grpc::Status st = ctx.client().Svid().MintX509SVID(&call, req, &resp);
      if (!st.ok()) return ctx.client().RpcError(st, "unable to mint SVID");
    }
    if (resp.svid().cert_chain_size() == 0) {
      return absl::InternalError("server response missing SVID chain");
    }

    types::Bundle bundle;
    {
      bundlev1::GetBundleRequest bundle_req;
      grpc::ClientContext call;
      grpc::Status st = ctx.client().Bundle().GetBundle(&call, bundle_req, &bundle);
      if (!st.ok()) return ctx.client().RpcError(st, "unable to get bundle");
    }
    if (bundle.x509_authorities_size() == 0) {
      return absl::InternalError("server response missing X509 Authorities");
    }

    // Certificate times have whole seconds and the request took a moment,
    // so only a shortfall beyond that slack means the server capped the TTL.
    absl::Time expires = absl::FromUnixSeconds(resp.svid().expires_at());
    if (expires - ctx.clock().Now() < ttl_ - kTtlSlack) {
      ctx.err() << "X509-SVID lifetime was capped shorter than specified ttl; expires "
                << GoQuote(Rfc3339Utc(expires)) << "\n";
    }

    std::string svid_pem, bundle_pem;
    for (const std::string& der : resp.svid().cert_chain()) {
      svid_pem += crypto::EncodePem("CERTIFICATE", der);
    }
    for (const types::X509Certificate& ca : bundle.x509_authorities()) {
      bundle_pem += crypto::EncodePem("CERTIFICATE", ca.asn1());
    }
    std::string key_pem = key->ToPkcs8Pem();

    if (write_.empty()) {
      if (ctx.json()) {
        nlohmann::json doc = nlohmann::json::object();
        doc["x509_svid"] = nlohmann::json::array();
        for (const std::string& der : resp.svid().cert_chain()) {
          doc["x509_svid"].push_back(crypto::Base64Encode(der));
        }
        doc["private_key"] = crypto::Base64Encode(key->ToPkcs8Der());
        doc["root_cas"] = nlohmann::json::array();
        for (const types::X509Certificate& ca : bundle.x509_authorities()) {
          doc["root_cas"].push_back(crypto::Base64Encode(ca.asn1()));
        }
        ctx.out() << doc.dump() << "\n";
      } else {
        ctx.out() << "X509-SVID:\n"
                  << svid_pem << "\n"
                  << "Private key:\n"
                  << key_pem << "\n"
                  << "Root CAs:\n"
                  << bundle_pem << "\n";
      }
      return absl::OkStatus();
    }

    std::string svid_path = JoinPath(write_, "svid.pem");
    std::string key_path = JoinPath(write_, "key.pem");
    std::string bundle_path = JoinPath(write_, "bundle.pem");
    if (absl::Status d = MakeDirs(write_, 0755); !d.ok()) {
      return absl::Status(d.code(), absl::StrCat("unable to create directory: ", d.message()));
    }
    absl::Status w = WriteFileAtomic(svid_path, svid_pem, 0644);
    if (!w.ok()) return absl::Status(w.code(), absl::StrCat("unable to write SVID: ", w.message()));
    ctx.out() << "X509-SVID written to " << svid_path << "\n";
    w = WriteFileAtomic(key_path, key_pem, 0600);
    if (!w.ok()) return absl::Status(w.code(), absl::StrCat("unable to write key: ", w.message()));
    ctx.out() << "Private key written to " << key_path << "\n";
    w = WriteFileAtomic(bundle_path, bundle_pem, 0644);
    if (!w.ok()) {
      return absl::Status(w.code(), absl::StrCat("unable to write bundle: ", w.message()));
    }
    ctx.out() << "Root CAs written to " << bundle_path << "\n";
    return absl::OkStatus();
  }

 private:
  std::string spiffe_id_;
  absl::Duration ttl_;
  std::vector<std::string> dns_names_;
  std::string write_;
};

// The "exp" claim of a compact JWS, read without verifying the signature
// (the token comes straight from the server).
absl::StatusOr<absl::Time> JwtExpiry(const std::string& token) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return absl::InvalidArgumentError("token is not a compact JWS");
  absl::StatusOr<std::string> payload = crypto::Base64UrlDecode(parts[1]);
  if (!payload.ok()) return absl::InvalidArgumentError("token payload is not base64url");
  nlohmann::json claims = nlohmann::json::parse(*payload, nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object()) return absl::InvalidArgumentError("token payload is not a JSON object");
  auto exp = claims.find("exp");
  if (exp == claims.end() || !exp->is_number()) return absl::InvalidArgumentError("no expiry claim");
  return absl::FromUnixSeconds(exp->get<int64_t>());
}

class JwtMintCommand final : public Command {
 public:
  void AddFlags(FlagSet& flags) override {
    flags.String("spiffeID", &spiffe_id_, "", "SPIFFE ID of the JWT-SVID");
    flags.Duration("ttl", &ttl_, absl::ZeroDuration(), "TTL of the JWT-SVID");
    flags.StringList("audience", &audience_,
                     "Audience claim that will be included in the SVID. Can be used more than "
                     "once.");
    flags.String("write", &write_, "", "File to write token to instead of stdout");
  }

  absl::Status Run(const FlagSet&, CommandContext& ctx) override {
    if (spiffe_id_.empty()) return absl::InvalidArgumentError("spiffeID must be specified");
    if (audience_.empty()) {
      return absl::InvalidArgumentError("at least one audience must be specified");
    }
    svidv1::MintJWTSVIDRequest req;
    SIGIL_ASSIGN_OR_RETURN(*req.mutable_id(), ParseSpiffeIdArg("SPIFFE ID", spiffe_id_));
    SIGIL_ASSIGN_OR_RETURN(int32_t ttl_seconds, TtlSeconds(ttl_));
    req.set_ttl(ttl_seconds);
    for (const std::string& a : audience_) req.add_audience(a);

    svidv1::MintJWTSVIDResponse resp;
    grpc::ClientContext call;
    grpc::Status st = ctx.client().Svid().MintJWTSVID(&call, req, &resp);
    if (!st.ok()) return ctx.client().RpcError(st, "unable to mint SVID");
    const std::string& token = resp.svid().token();
    if (token.empty()) return absl::InternalError("server response missing token");

    absl::StatusOr<absl::Time> expires = JwtExpiry(token);
    if (!expires.ok()) {
      ctx.err() << "Unable to determine JWT-SVID lifetime: " << expires.status().message() << "\n";
    } else if (*expires - ctx.clock().Now() < ttl_ - kTtlSlack) {
      ctx.err() << "JWT-SVID lifetime was capped shorter than specified ttl; expires "
                << GoQuote(Rfc3339Utc(*expires)) << "\n";
    }

    if (write_.empty()) {
      if (ctx.json()) {
        ctx.PrintJson(resp);
      } else {
        ctx.out() << token << "\n";
      }
      return absl::OkStatus();
    }
    absl::Status w = WriteFileAtomic(write_, token, 0600);
    if (!w.ok()) return absl::Status(w.code(), absl::StrCat("unable to write token: ", w.message()));
    ctx.out() << "JWT-SVID written to " << write_ << "\n";
    return absl::OkStatus();
  }

 private:
  std::string spiffe_id_;
  absl::Duration ttl_;
  std::vector<std::string> audience_;
  std::string write_;
};

}  // namespace

std::unique_ptr<Command> NewX509MintCommand() { return std::make_unique<X509MintCommand>(); }
std::unique_ptr<Command> NewJwtMintCommand() { return std::make_unique<JwtMintCommand>(); }

}  // namespace sigil::server::cli
