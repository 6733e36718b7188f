#pragma once

// The two server RPCs the SVID cache and its rotator depend on, as a narrow
// interface: ServerClient implements it over gRPC; tests use in-memory fakes.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/id.h"

namespace sigil::agent {

struct X509SvidRequest {
  std::string entry_id;
  // DER PKCS#10 request for the key the SVID is minted for.
  std::string csr_der;
};

// One result of BatchNewX509SVID: the chain (leaf first) or why this entry
// was refused.
using X509SvidResult = absl::StatusOr<std::vector<crypto::Certificate>>;

struct MintedJwtSvid {
  spiffe::SpiffeId spiffe_id;
  std::string token;
  absl::Time issued_at;
  absl::Time expires_at;
};

class ServerApi {
 public:
  virtual ~ServerApi() = default;

  // SVID.BatchNewX509SVID: one result per request, in order. The call as a
  // whole fails with the RPC's status (Unavailable when the server cannot
  // be reached, PermissionDenied when it refuses the agent's identity);
  // individual entries fail inside their result (NotFound for an entry the
  // agent is no longer authorized for). Thread-safe.
  virtual absl::StatusOr<std::vector<X509SvidResult>> BatchNewX509Svid(
      const std::vector<X509SvidRequest>& requests) = 0;

  // SVID.NewJWTSVID for an entry the agent is authorized for. The RPC's
  // status on failure. Thread-safe.
  virtual absl::StatusOr<MintedJwtSvid> NewJwtSvid(const std::string& entry_id,
                                                   const std::vector<std::string>& audience) = 0;
};

}  // namespace sigil::agent
