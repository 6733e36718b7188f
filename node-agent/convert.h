#pragma once

// What the agent makes of the SPIRE server API's wire types beyond
// apitypes/convert.h: bundles with their tainted marks, SVID chains, entry
// selectors. Everything here is untrusted input from the network: errors
// name the field that is wrong.

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "attestors/selector.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/certificate.h"
#include "spire/api/types/bundle.pb.h"
#include "spire/api/types/entry.pb.h"

namespace sigil::agent {

// A bundle as the server sends it, plus which X.509 authorities it marks
// tainted (by subject key ID).
struct ReceivedBundle {
  spiffe::Bundle bundle;
  std::set<std::string> tainted_x509_key_ids;
};

// apitypes::BundleFromProto, keeping the tainted marks. InvalidArgument
// naming the element that is malformed ("bundle example.org:
// x509_authorities[1]: ...").
absl::StatusOr<ReceivedBundle> ReceiveBundle(const spire::api::types::Bundle& b);

// The key ID an authority is known by: its subject key identifier. Empty
// when the certificate has none.
std::string AuthorityKeyIdOf(const crypto::Certificate& ca);

// Parses a DER chain (leaf first) as repeated bytes. InvalidArgument naming
// `field` and the index of a malformed certificate, or for an empty chain.
absl::StatusOr<std::vector<crypto::Certificate>> ChainFromDer(
    const google::protobuf::RepeatedPtrField<std::string>& der, const std::string& field);

// Selectors of an entry, sorted and without duplicates.
attestors::Selectors SortedSelectors(const spire::api::types::Entry& e);

}  // namespace sigil::agent
