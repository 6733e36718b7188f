#pragma once

// The client side of the server's admin API: one gRPC channel over the
// server's Unix socket (common/cli_output.h's SocketClient, which also
// words failed calls as SPIRE's CLI prints them) and stubs for each
// SPIRE-compatible service.

#include <memory>
#include <string>

#include "common/cli_output.h"
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
// open the channel. Failed calls are described as "the server is not
// running at <path>: ..." or "rpc error: code = ... desc = ..."
// (SocketClient::DescribeRpcError). Not thread-safe (one command runs at a
// time).
class ServerClient final : public ::sigil::cli::SocketClient {
 public:
  explicit ServerClient(std::string socket_path);

  spire::api::server::agent::v1::Agent::Stub& Agent();
  spire::api::server::bundle::v1::Bundle::Stub& Bundle();
  spire::api::server::entry::v1::Entry::Stub& Entry();
  spire::api::server::localauthority::v1::LocalAuthority::Stub& LocalAuthority();
  spire::api::server::svid::v1::SVID::Stub& Svid();

 private:
  std::unique_ptr<spire::api::server::agent::v1::Agent::Stub> agent_;
  std::unique_ptr<spire::api::server::bundle::v1::Bundle::Stub> bundle_;
  std::unique_ptr<spire::api::server::entry::v1::Entry::Stub> entry_;
  std::unique_ptr<spire::api::server::localauthority::v1::LocalAuthority::Stub> local_authority_;
  std::unique_ptr<spire::api::server::svid::v1::SVID::Stub> svid_;
};

}  // namespace sigil::server::cli
