#pragma once

// The client side of the server's admin API: one gRPC channel over the
// server's Unix socket, stubs for each SPIRE-compatible service, and the
// translation of failed calls into the messages SPIRE's CLI prints.

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"
#include "spire/api/server/localauthority/v1/localauthority.grpc.pb.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"

namespace sigil::server::cli {

// Where sigil-server serves its admin API by default (SPIRE's is
// /tmp/spire-server/private/api.sock).
inline constexpr char kDefaultSocketPath[] = "/tmp/sigil-server/private/api.sock";

// Stubs are created on first use, so commands that fail validation never
// open the channel. Not thread-safe (one command runs at a time).
class ServerClient {
 public:
  explicit ServerClient(std::string socket_path);

  const std::string& socket_path() const { return socket_path_; }

  spire::api::server::agent::v1::Agent::Stub& Agent();
  spire::api::server::bundle::v1::Bundle::Stub& Bundle();
  spire::api::server::entry::v1::Entry::Stub& Entry();
  spire::api::server::localauthority::v1::LocalAuthority::Stub& LocalAuthority();
  spire::api::server::svid::v1::SVID::Stub& Svid();
  grpc::health::v1::Health::Stub& Health();

  // Describes a failed call the way SPIRE's CLI does:
  // "rpc error: code = NotFound desc = <message>". When the server cannot be
  // reached because nothing listens at the socket, it says so instead:
  // "the server is not running at <path>: <reason>".
  std::string DescribeRpcError(const grpc::Status& status) const;

  // DescribeRpcError as an absl::Status of the same code, its message
  // prefixed with "<context>: " when `context` is not empty.
  absl::Status RpcError(const grpc::Status& status, absl::string_view context = "") const;

 private:
  std::shared_ptr<grpc::Channel> Channel();

  std::string socket_path_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<spire::api::server::agent::v1::Agent::Stub> agent_;
  std::unique_ptr<spire::api::server::bundle::v1::Bundle::Stub> bundle_;
  std::unique_ptr<spire::api::server::entry::v1::Entry::Stub> entry_;
  std::unique_ptr<spire::api::server::localauthority::v1::LocalAuthority::Stub> local_authority_;
  std::unique_ptr<spire::api::server::svid::v1::SVID::Stub> svid_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace sigil::server::cli
