#pragma once

// A gRPC channel to a sigil-server TCP listener for tests: trusts the given
// roots (the server's bundle) and optionally presents an X509-SVID.

#include <memory>
#include <string>

#include <grpcpp/channel.h>

namespace sigil::testing {

// `roots_pem`: certificates the server chain must verify against.
// `chain_pem` / `key_pem`: the client identity; both empty = no client cert.
// The server's name is not checked (SPIFFE servers carry URI SANs only).
std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target, const std::string& roots_pem,
                                          const std::string& chain_pem = "", const std::string& key_pem = "");

}  // namespace sigil::testing
