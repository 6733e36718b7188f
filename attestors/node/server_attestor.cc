#include "attestors/node/server_attestor.h"

#include "absl/strings/str_cat.h"

namespace sigil::attestors::node {

absl::StatusOr<std::unique_ptr<ServerAttestorRegistry>> ServerAttestorRegistry::Create(
    std::vector<std::unique_ptr<ServerAttestor>> attestors) {
  std::unique_ptr<ServerAttestorRegistry> registry(new ServerAttestorRegistry());
  for (auto& a : attestors) {
    std::string name = a->name();
    if (!registry->attestors_.emplace(name, std::move(a)).second) {
      return absl::InvalidArgumentError(absl::StrCat("node attestor \"", name, "\" is configured twice"));
    }
  }
  return registry;
}

ServerAttestor* ServerAttestorRegistry::Find(absl::string_view name) const {
  auto it = attestors_.find(name);
  return it == attestors_.end() ? nullptr : it->second.get();
}

std::vector<std::string> ServerAttestorRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : attestors_) names.push_back(name);
  return names;
}

}  // namespace sigil::attestors::node
