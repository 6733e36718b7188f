#include "server/cli/bundle_format.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"
#include "server/cli/cli_util.h"
#include "spiffe/crypto/certificate.h"

namespace sigil::server::cli {

namespace types = ::spire::api::types;

absl::StatusOr<BundleFormat> ParseBundleFormat(absl::string_view s) {
  std::string lower = absl::AsciiStrToLower(s);
  if (lower.empty() || lower == "pem") return BundleFormat::kPem;
  if (lower == "spiffe") return BundleFormat::kSpiffe;
  return absl::InvalidArgumentError(absl::StrCat("invalid format: ", GoQuote(lower)));
}

absl::Status WriteBundle(const types::Bundle& bundle, BundleFormat format, bool header,
                         std::ostream& out) {
  std::string text;
  if (format == BundleFormat::kPem) {
    for (const types::X509Certificate& authority : bundle.x509_authorities()) {
      absl::StatusOr<std::vector<crypto::Certificate>> certs =
          crypto::Certificate::ParseDerChain(authority.asn1());
      if (!certs.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unable to parse certificates ASN.1 DER data: ", certs.status().message()));
      }
      text += crypto::ToPem(*certs);
    }
  } else {
    absl::StatusOr<spiffe::Bundle> b = apitypes::BundleFromProto(bundle);
    if (!b.ok()) return b.status();
    text = b->ToSpiffeJson(4) + "\n";
  }
  if (header) {
    out << "****************************************\n"
        << "* " << bundle.trust_domain() << "\n"
        << "****************************************\n";
  }
  out << text;
  return absl::OkStatus();
}

}  // namespace sigil::server::cli
