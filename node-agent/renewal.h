#pragma once

// When to renew an SVID.

#include "absl/time/time.h"

namespace sigil::agent {

// Servers backdate NotBefore (Sigil and SPIRE by 10 s) to absorb clock skew;
// that margin is not part of the useful lifetime.
inline constexpr absl::Duration kIssuerBackdate = absl::Seconds(10);

// The moment `fraction` (e.g. 0.5 ± jitter) of a certificate's useful
// lifetime has passed, the lifetime counted from its issuance (NotBefore
// plus the backdate). Without the correction a short-lived SVID (TTL near
// the backdate) would be "due" the moment it arrives and be re-minted in a
// loop.
inline absl::Time RenewalTime(absl::Time not_before, absl::Time not_after, double fraction) {
  absl::Time issued = not_before + kIssuerBackdate;
  if (issued > not_after) issued = not_before;
  return issued + (not_after - issued) * fraction;
}

}  // namespace sigil::agent
