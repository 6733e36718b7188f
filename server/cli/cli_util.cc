#include "server/cli/cli_util.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "apitypes/convert.h"
#include "spiffe/id.h"

namespace sigil::server::cli {

namespace types = ::spire::api::types;

std::string Pluralize(int64_t n, absl::string_view singular, absl::string_view plural) {
  return absl::StrCat(n, " ", n == 1 ? singular : plural);
}

absl::StatusOr<types::SPIFFEID> ParseSpiffeIdArg(absl::string_view what,
                                                 absl::string_view value) {
  absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::FromString(value);
  if (!id.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", GoQuote(value),
                                                   " is not a valid SPIFFE ID: ",
                                                   id.status().message()));
  }
  return apitypes::SpiffeIdToProto(*id);
}

absl::StatusOr<std::string> ParseTrustDomainArg(absl::string_view value) {
  if (absl::StrContains(value, ":/")) {
    absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::FromString(value);
    if (!id.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trust domain ", GoQuote(value), " is not valid: ", id.status().message()));
    }
    if (!id->path().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          GoQuote(value), " is not a trust domain: a trust domain ID has no path"));
    }
    return id->trust_domain().name();
  }
  absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::FromString(value);
  if (!td.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("trust domain ", GoQuote(value),
                                                   " is not valid: ", td.status().message()));
  }
  return td->name();
}

absl::StatusOr<types::Selector> ParseSelectorArg(absl::string_view s) {
  size_t colon = s.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("selector ", GoQuote(s), " must be formatted as type:value"));
  }
  types::Selector out;
  out.set_type(std::string(s.substr(0, colon)));
  out.set_value(std::string(s.substr(colon + 1)));
  return out;
}

void PrintEntry(const types::Entry& e, std::ostream& out) {
  out << "Entry ID         : " << (e.id().empty() ? "(none)" : e.id()) << "\n";
  out << "SPIFFE ID        : " << apitypes::SpiffeIdString(e.spiffe_id()) << "\n";
  out << "Parent ID        : " << apitypes::SpiffeIdString(e.parent_id()) << "\n";
  out << "Revision         : " << e.revision_number() << "\n";
  if (e.downstream()) out << "Downstream       : true\n";
  if (e.x509_svid_ttl() == 0) {
    out << "X509-SVID TTL    : default\n";
  } else {
    out << "X509-SVID TTL    : " << e.x509_svid_ttl() << "\n";
  }
  if (e.jwt_svid_ttl() == 0) {
    out << "JWT-SVID TTL     : default\n";
  } else {
    out << "JWT-SVID TTL     : " << e.jwt_svid_ttl() << "\n";
  }
  if (e.expires_at() != 0) {
    out << "Expiration time  : " << GoTimeUtc(absl::FromUnixSeconds(e.expires_at())) << "\n";
  }
  for (const types::Selector& s : e.selectors()) {
    out << "Selector         : " << s.type() << ":" << s.value() << "\n";
  }
  for (const std::string& td : e.federates_with()) out << "FederatesWith    : " << td << "\n";
  for (const std::string& dns : e.dns_names()) out << "DNS name         : " << dns << "\n";
  // Rare attributes are shown only when set, to keep the listing short.
  if (e.admin()) out << "Admin            : true\n";
  if (e.store_svid()) out << "StoreSvid        : true\n";
  if (!e.hint().empty()) out << "Hint             : " << e.hint() << "\n";
  out << "\n";
}

}  // namespace sigil::server::cli
