#include "node-agent/convert.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"

namespace sigil::agent {

std::string AuthorityKeyIdOf(const crypto::Certificate& ca) { return ca.subject_key_id(); }

absl::StatusOr<ReceivedBundle> ReceiveBundle(const spire::api::types::Bundle& b) {
  std::set<std::string> tainted;
  absl::StatusOr<spiffe::Bundle> bundle = apitypes::BundleFromProto(b, &tainted);
  if (!bundle.ok()) return bundle.status();
  return ReceivedBundle{*std::move(bundle), std::move(tainted)};
}

absl::StatusOr<std::vector<crypto::Certificate>> ChainFromDer(
    const google::protobuf::RepeatedPtrField<std::string>& der, const std::string& field) {
  if (der.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty certificate chain"));
  std::vector<crypto::Certificate> chain;
  chain.reserve(der.size());
  for (int i = 0; i < der.size(); ++i) {
    auto cert = crypto::Certificate::FromDer(der.Get(i));
    if (!cert.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "]: ", cert.status().message()));
    }
    chain.push_back(std::move(*cert));
  }
  return chain;
}

attestors::Selectors SortedSelectors(const spire::api::types::Entry& e) {
  attestors::Selectors out;
  out.reserve(e.selectors_size());
  for (const auto& s : e.selectors()) out.push_back({s.type(), s.value()});
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace sigil::agent
