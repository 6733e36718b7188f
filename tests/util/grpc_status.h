#pragma once

// grpc::Status assertions for tests that call a service over a channel.
// Header-only; include it only from test binaries that link gRPC.

#include <grpcpp/support/status.h>
#include <gtest/gtest.h>

#include <string>

namespace sigil::testing {

// EXPECTs `s` to have `code` and a message containing `substr` (any message
// when `substr` is empty).
inline void ExpectGrpcStatus(const grpc::Status& s, grpc::StatusCode code,
                             const std::string& substr) {
  EXPECT_EQ(s.error_code(), code) << s.error_code() << ": " << s.error_message();
  EXPECT_NE(s.error_message().find(substr), std::string::npos)
      << "message \"" << s.error_message() << "\" lacks \"" << substr << "\"";
}

}  // namespace sigil::testing
