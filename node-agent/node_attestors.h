#pragma once

// The node attestors (agent halves) built into sigil-agent: one explicit
// list, consulted by config validation and by attestation. Adding an
// attestor means adding one row to the list in node_attestors.cc.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attestors/node/agent_attestor.h"

namespace sigil::agent {

struct AgentSettings;

// Sorted names of the built-in node attestors (SPIRE's plugin names).
std::vector<std::string> BuiltinNodeAttestorNames();
bool IsBuiltinNodeAttestor(const std::string& name);

// Creates the attestor `settings.node_attestor` names, configured from the
// settings. FailedPrecondition when none is configured (the message says how
// to configure one); NotFound for a name that is not built in; the
// attestor's own errors (e.g. InvalidArgument for bad plugin_data).
absl::StatusOr<std::unique_ptr<attestors::node::AgentAttestor>> CreateNodeAttestor(const AgentSettings& settings);

}  // namespace sigil::agent
