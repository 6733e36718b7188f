#include "common/grpc_log.h"

#include <grpc/support/log.h>

#include <cstring>

#include "spdlog/spdlog.h"

namespace sigil {
namespace {

void Log(gpr_log_func_args* args) {
  const char* msg = args->message != nullptr ? args->message : "";
  if (std::strstr(msg, "No match found for server name") != nullptr) {
    spdlog::debug("grpc: {}", msg);
    return;
  }
  switch (args->severity) {
    case GPR_LOG_SEVERITY_ERROR:
      spdlog::warn("grpc: {}", msg);
      break;
    default:
      spdlog::debug("grpc: {}", msg);
  }
}

}  // namespace

void RouteGrpcLogsToSpdlog() { gpr_set_log_function(Log); }

}  // namespace sigil
