#pragma once

// Who is calling the server API, and what each kind of caller may do.
//
// Callers on the admin Unix socket are local admins. Callers on the TCP
// listener are identified only by a verified X509-SVID of this trust domain:
//  - an agent: an attested, unbanned agent presenting its current SVID;
//  - an admin: the SVID's ID is the spiffe_id of an entry with admin=true;
//  - a downstream server: ... of an entry with downstream=true;
// and anyone else is anonymous (only AttestAgent, GetBundle and health).

#include <cstdint>
#include <optional>
#include <string>

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spiffe/id.h"

namespace sigil::server::api {

struct Caller {
  // Arrived on the admin Unix socket.
  bool local = false;
  // The verified SPIFFE ID of the caller's X509-SVID (TCP only).
  std::optional<spiffe::SpiffeId> id;
  bool admin = false;
  bool agent = false;
  bool downstream = false;

  std::string Describe() const;
};

// Bit set of caller kinds allowed to call an RPC.
enum Allow : uint32_t {
  kAllowAny = 1u << 0,
  kAllowLocal = 1u << 1,
  kAllowAdmin = 1u << 2,
  kAllowAgent = 1u << 3,
  kAllowDownstream = 1u << 4,
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // Establishes the caller of the RPC in `ctx`. An invalid or untrusted
  // client certificate makes the caller anonymous (the RPC's rule decides),
  // except that an agent SVID that is not the agent's current one, or of a
  // banned or evicted agent, is PermissionDenied naming the reason.
  virtual absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& ctx) = 0;
};

// OK if `caller` is one of `allowed`; PermissionDenied naming the method and
// what is required otherwise.
absl::Status Authorize(const Caller& caller, uint32_t allowed, const char* method);

// Authenticates and authorizes in one step; the usual first line of an RPC.
absl::StatusOr<Caller> Authenticate(Authenticator* authn, const grpc::ServerContextBase& ctx,
                                    uint32_t allowed, const char* method);

// absl::Status → grpc::Status (same code and message).
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace sigil::server::api
