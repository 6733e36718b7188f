#pragma once

// The client side of the agent's Workload API socket: one gRPC channel
// (common/cli_output.h's SocketClient, which also provides the Health stub
// and words failed calls as SPIRE's CLI prints them), the SpiffeWorkloadAPI
// stub, and per-call context set-up (the security header every Workload API
// call must carry, and the deadline).

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "common/cli_output.h"
#include "workload.grpc.pb.h"

namespace sigil::agent::cli {

// The metadata every Workload API request must carry (SPIFFE Workload API
// standard §5.2); the agent refuses calls without it (InvalidArgument).
inline constexpr char kSecurityHeaderKey[] = "workload.spiffe.io";
inline constexpr char kSecurityHeaderValue[] = "true";

// Stubs are created on first use, so commands that fail validation never
// open the channel. Failed calls are described as "the agent is not running
// at <path>: ..." or "rpc error: code = ... desc = ..."
// (SocketClient::DescribeRpcError). Not thread-safe, except that a
// ClientContext prepared by PrepareContext may be cancelled from another
// thread.
class WorkloadClient final : public ::sigil::cli::SocketClient {
 public:
  // `timeout` bounds every call prepared by PrepareContext; zero or
  // negative means no deadline.
  WorkloadClient(std::string socket_path, absl::Duration timeout);

  ::SpiffeWorkloadAPI::Stub& Workload();

  // Adds the security header and, when the client has a timeout, the
  // deadline. Call once per ClientContext, before the call.
  void PrepareContext(grpc::ClientContext* context) const;

 private:
  absl::Duration timeout_;
  std::unique_ptr<::SpiffeWorkloadAPI::Stub> workload_;
};

}  // namespace sigil::agent::cli
