#include "node-agent/workload_api/server.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_posix.h>

#include <chrono>
#include <utility>

#include "spdlog/spdlog.h"

namespace sigil::agent {

absl::StatusOr<std::unique_ptr<WorkloadApiServer>> WorkloadApiServer::Start(
    Options options, IdentitySource* source, const attestors::workload::WorkloadAttestorRegistry* attestors) {
  UnixListener::Options listen;
  listen.socket_path = options.socket_path;
  absl::StatusOr<std::unique_ptr<UnixListener>> listener = UnixListener::Create(listen);
  if (!listener.ok()) return listener.status();

  std::unique_ptr<WorkloadApiServer> server(new WorkloadApiServer());
  server->socket_path_ = options.socket_path;
  server->listener_ = std::move(*listener);
  server->service_ = std::make_unique<WorkloadApiService>(std::move(options.service), source, attestors,
                                                          server->listener_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::InternalError("workload api: gRPC server failed to start");
  }
  grpc::Server* grpc_server = server->server_.get();
  server->listener_->Start([grpc_server](int fd) { grpc::AddInsecureChannelFromFd(grpc_server, fd); });
  spdlog::info("workload api: serving on {}", server->socket_path_);
  return server;
}

WorkloadApiServer::~WorkloadApiServer() { Shutdown(); }

void WorkloadApiServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  // No new connections, then end the calls (which ends every stream's
  // reactor), then the workers that served them. The listener's connection
  // table outlives all of them: calls look their callers up in it.
  listener_->Stop();
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
  server_->Wait();
  service_->Stop();
  server_.reset();
  service_.reset();
  listener_.reset();
}

}  // namespace sigil::agent
