#include "attestors/workload/workload_attestor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace sigil::attestors::workload {

absl::StatusOr<std::unique_ptr<WorkloadAttestorRegistry>> WorkloadAttestorRegistry::Create(
    std::vector<std::unique_ptr<WorkloadAttestor>> attestors) {
  std::unique_ptr<WorkloadAttestorRegistry> registry(new WorkloadAttestorRegistry());
  for (auto& a : attestors) {
    if (a == nullptr) return absl::InvalidArgumentError("workload attestor list holds a null entry");
    std::string name = a->name();
    if (!registry->attestors_.emplace(name, std::move(a)).second) {
      return absl::InvalidArgumentError(absl::StrCat("workload attestor \"", name, "\" is configured twice"));
    }
  }
  return registry;
}

absl::StatusOr<Selectors> WorkloadAttestorRegistry::Attest(const WorkloadProcess& process) const {
  Selectors out;
  std::vector<absl::Status> errors;
  for (const auto& [name, attestor] : attestors_) {
    absl::StatusOr<Selectors> selectors = attestor->Attest(process);
    if (!selectors.ok()) {
      spdlog::warn("workload attestor \"{}\" failed for pid {}: {}", name, process.pid,
                   std::string(selectors.status().message()));
      errors.push_back(selectors.status());
      continue;
    }
    out.insert(out.end(), selectors->begin(), selectors->end());
  }
  if (!attestors_.empty() && errors.size() == attestors_.size()) {
    std::vector<std::string> messages;
    for (const absl::Status& s : errors) messages.emplace_back(s.message());
    return absl::Status(errors.front().code(), absl::StrJoin(messages, "; "));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

WorkloadAttestor* WorkloadAttestorRegistry::Find(absl::string_view name) const {
  auto it = attestors_.find(name);
  return it == attestors_.end() ? nullptr : it->second.get();
}

std::vector<std::string> WorkloadAttestorRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : attestors_) names.push_back(name);
  return names;
}

}  // namespace sigil::attestors::workload
