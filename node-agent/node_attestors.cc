#include "node-agent/node_attestors.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attestors/node/join_token/agent.h"
#include "attestors/node/x509pop/agent.h"
#include "node-agent/config.h"

namespace sigil::agent {
namespace {

using Factory = std::function<absl::StatusOr<std::unique_ptr<attestors::node::AgentAttestor>>(const AgentSettings&)>;

struct BuiltinAttestor {
  const char* name;
  Factory create;
};

const std::vector<BuiltinAttestor>& Builtins() {
  static const auto* list = new std::vector<BuiltinAttestor>{
      {"join_token",
       [](const AgentSettings& s) -> absl::StatusOr<std::unique_ptr<attestors::node::AgentAttestor>> {
         return std::make_unique<attestors::node::join_token::JoinTokenAgentAttestor>(s.join_token);
       }},
      {"x509pop",
       [](const AgentSettings& s) -> absl::StatusOr<std::unique_ptr<attestors::node::AgentAttestor>> {
         const auto& d = s.plugins.nodeattestor().x509pop().plugin_data();
         attestors::node::x509pop::AgentConfig config{d.private_key_path(), d.certificate_path(),
                                                      d.intermediates_path()};
         auto attestor = attestors::node::x509pop::X509PopAgentAttestor::Create(std::move(config));
         if (!attestor.ok()) return attestor.status();
         return std::unique_ptr<attestors::node::AgentAttestor>(std::move(*attestor));
       }},
  };
  return *list;
}

}  // namespace

std::vector<std::string> BuiltinNodeAttestorNames() {
  std::vector<std::string> names;
  for (const auto& b : Builtins()) names.push_back(b.name);
  std::sort(names.begin(), names.end());
  return names;
}

bool IsBuiltinNodeAttestor(const std::string& name) {
  for (const auto& b : Builtins()) {
    if (name == b.name) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<attestors::node::AgentAttestor>> CreateNodeAttestor(const AgentSettings& settings) {
  if (settings.node_attestor.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no node attestor configured: give a join token (-joinToken or agent.join_token) or configure "
        "plugins.NodeAttestor (available: ",
        absl::StrJoin(BuiltinNodeAttestorNames(), ", "), ")"));
  }
  for (const auto& b : Builtins()) {
    if (settings.node_attestor == b.name) return b.create(settings);
  }
  return absl::NotFoundError(absl::StrCat("node attestor \"", settings.node_attestor,
                                          "\" is not available in this build (available: ",
                                          absl::StrJoin(BuiltinNodeAttestorNames(), ", "), ")"));
}

}  // namespace sigil::agent
