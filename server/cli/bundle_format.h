#pragma once

// Bundles as the bundle commands print and read them: PEM (X.509
// authorities only) or SPIFFE bundle JSON (SPIFFE Trust Domain and Bundle
// standard §4). Conversions from and to spire.api.types.Bundle are
// apitypes/convert.h's.

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spire/api/types/bundle.pb.h"

namespace sigil::server::cli {

enum class BundleFormat { kPem, kSpiffe };

// "pem" (also for "") or "spiffe", case-insensitive. InvalidArgument
// ("invalid format: \"der\"") otherwise.
absl::StatusOr<BundleFormat> ParseBundleFormat(absl::string_view s);

// Writes `bundle` in `format`: PEM certificates, or SPIFFE bundle JSON
// indented by four spaces plus a newline. With `header`, a banner naming
// the trust domain comes first (as `bundle list` prints). InvalidArgument
// when the bundle does not convert (apitypes::BundleFromProto).
absl::Status WriteBundle(const spire::api::types::Bundle& bundle, BundleFormat format,
                         bool header, std::ostream& out);

}  // namespace sigil::server::cli
