#pragma once

// sigil-agent's Workload API endpoint: the SpiffeWorkloadAPI service and the
// standard gRPC health service (grpc.health.v1, reporting SERVING), served on
// a Unix socket whose connections the agent accepts itself (UnixListener) so
// that every call's caller is known by its kernel credentials. The gRPC
// server has no listening port of its own: each accepted connection is added
// with grpc::AddInsecureChannelFromFd.

#include <grpcpp/server.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attestors/workload/workload_attestor.h"
#include "node-agent/workload_api/identity_source.h"
#include "node-agent/workload_api/service.h"
#include "node-agent/workload_api/unix_listener.h"

namespace sigil::agent {

class WorkloadApiServer {
 public:
  struct Options {
    // The Unix socket to serve on (SPIRE: `socket_path`). Its directory is
    // created 0755 when missing; the socket is 0777. Default:
    // kDefaultWorkloadSocketPath.
    std::string socket_path = kDefaultWorkloadSocketPath;
    // See WorkloadApiServiceOptions.
    WorkloadApiServiceOptions service;
  };

  // Binds the socket and starts serving. `source` and `attestors` are not
  // owned and must outlive the server. Errors of UnixListener::Create
  // (AlreadyExists "... already in use", InvalidArgument, ...); Internal when
  // gRPC cannot start.
  static absl::StatusOr<std::unique_ptr<WorkloadApiServer>> Start(
      Options options, IdentitySource* source,
      const attestors::workload::WorkloadAttestorRegistry* attestors);

  // Shutdown().
  ~WorkloadApiServer();

  // Stops accepting connections, ends running calls (streams finish with
  // CANCELLED/UNAVAILABLE after `grace`), removes the socket file and stops
  // the worker pool. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(1));

  const std::string& socket_path() const { return socket_path_; }
  // For tests and diagnostics; valid until Shutdown().
  const UnixListener* listener() const { return listener_.get(); }

 private:
  WorkloadApiServer() = default;

  std::string socket_path_;
  std::unique_ptr<UnixListener> listener_;
  std::unique_ptr<WorkloadApiService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace sigil::agent
