#include "server/cli/client.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/cli/cli_util.h"

namespace sigil::server::cli {

ServerClient::ServerClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}

std::shared_ptr<grpc::Channel> ServerClient::Channel() {
  if (channel_ == nullptr) {
    channel_ = grpc::CreateChannel("unix:" + socket_path_, grpc::InsecureChannelCredentials());
  }
  return channel_;
}

spire::api::server::agent::v1::Agent::Stub& ServerClient::Agent() {
  if (agent_ == nullptr) agent_ = spire::api::server::agent::v1::Agent::NewStub(Channel());
  return *agent_;
}

spire::api::server::bundle::v1::Bundle::Stub& ServerClient::Bundle() {
  if (bundle_ == nullptr) bundle_ = spire::api::server::bundle::v1::Bundle::NewStub(Channel());
  return *bundle_;
}

spire::api::server::entry::v1::Entry::Stub& ServerClient::Entry() {
  if (entry_ == nullptr) entry_ = spire::api::server::entry::v1::Entry::NewStub(Channel());
  return *entry_;
}

spire::api::server::localauthority::v1::LocalAuthority::Stub& ServerClient::LocalAuthority() {
  if (local_authority_ == nullptr) {
    local_authority_ = spire::api::server::localauthority::v1::LocalAuthority::NewStub(Channel());
  }
  return *local_authority_;
}

spire::api::server::svid::v1::SVID::Stub& ServerClient::Svid() {
  if (svid_ == nullptr) svid_ = spire::api::server::svid::v1::SVID::NewStub(Channel());
  return *svid_;
}

grpc::health::v1::Health::Stub& ServerClient::Health() {
  if (health_ == nullptr) health_ = grpc::health::v1::Health::NewStub(Channel());
  return *health_;
}

std::string ServerClient::DescribeRpcError(const grpc::Status& status) const {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    // gRPC only says "failed to connect"; the socket file tells why.
    struct stat st;
    if (stat(socket_path_.c_str(), &st) != 0) {
      int err = errno;
      if (err == ENOENT) {
        return absl::StrCat("the server is not running at ", socket_path_,
                            ": the socket does not exist");
      }
      return absl::StrCat("cannot reach the server at ", socket_path_, ": ", std::strerror(err));
    }
    if (!S_ISSOCK(st.st_mode)) {
      return absl::StrCat("cannot reach the server at ", socket_path_, ": not a Unix socket");
    }
    if (absl::StrContains(status.error_message(), "Connection refused")) {
      return absl::StrCat("the server is not running at ", socket_path_,
                          ": connection refused (stale socket?)");
    }
  }
  return absl::StrCat("rpc error: code = ", GrpcCodeName(status.error_code()),
                      " desc = ", status.error_message());
}

absl::Status ServerClient::RpcError(const grpc::Status& status, absl::string_view context) const {
  std::string message = DescribeRpcError(status);
  if (!context.empty()) message = absl::StrCat(context, ": ", message);
  absl::StatusCode code = static_cast<absl::StatusCode>(status.error_code());
  return absl::Status(code == absl::StatusCode::kOk ? absl::StatusCode::kInternal : code, message);
}

}  // namespace sigil::server::cli
