#include "node-agent/cli/client.h"

#include <chrono>
#include <utility>

namespace sigil::agent::cli {

WorkloadClient::WorkloadClient(std::string socket_path, absl::Duration timeout)
    : SocketClient("agent", std::move(socket_path)), timeout_(timeout) {}

::SpiffeWorkloadAPI::Stub& WorkloadClient::Workload() {
  if (workload_ == nullptr) workload_ = ::SpiffeWorkloadAPI::NewStub(Channel());
  return *workload_;
}

void WorkloadClient::PrepareContext(grpc::ClientContext* context) const {
  context->AddMetadata(kSecurityHeaderKey, kSecurityHeaderValue);
  if (timeout_ > absl::ZeroDuration()) {
    // gRPC deadlines are wall-clock, whatever clock the command was given.
    context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout_));
  }
}

}  // namespace sigil::agent::cli
