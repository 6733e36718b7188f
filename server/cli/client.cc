#include "server/cli/client.h"

#include <utility>

namespace sigil::server::cli {

ServerClient::ServerClient(std::string socket_path)
    : SocketClient("server", std::move(socket_path)) {}

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

}  // namespace sigil::server::cli
