#pragma once

// Workload attestation: turning the process on the other end of a Workload
// API connection into selectors ("unix:uid:1000", "unix:path:/usr/bin/app")
// that registration entries are matched against. The agent runs every
// configured attestor for each call; each attestor reads what it needs about
// the process (from /proc, a container runtime, the kubelet, ...).

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attestors/selector.h"

namespace sigil::attestors::workload {

// The caller of a Workload API call as the kernel reported it for the
// connection (SO_PEERCRED at connect time). `pid` is never 0 here: the agent
// refuses callers from a pid namespace it cannot see before attesting.
struct WorkloadProcess {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

class WorkloadAttestor {
 public:
  virtual ~WorkloadAttestor() = default;

  // SPIRE's plugin name ("unix", "k8s", "docker").
  virtual const std::string& name() const = 0;

  // Selectors describing `process`, all of type name(). Errors are prefixed
  // "workloadattestor(<name>): "; NotFound when the process is gone,
  // Internal when something the attestor must read cannot be read. The
  // caller re-checks that the process is still the one that connected after
  // this returns (pid reuse), so an attestor need not. Thread-safe; may block
  // briefly (file reads, a cached digest of the workload's binary).
  virtual absl::StatusOr<Selectors> Attest(const WorkloadProcess& process) = 0;
};

// The configured workload attestors. Immutable once created; thread-safe.
class WorkloadAttestorRegistry {
 public:
  // InvalidArgument when two attestors share a name.
  static absl::StatusOr<std::unique_ptr<WorkloadAttestorRegistry>> Create(
      std::vector<std::unique_ptr<WorkloadAttestor>> attestors);

  // Runs every attestor and returns the union of their selectors, sorted and
  // without duplicates. As SPIRE does, an attestor that fails contributes no
  // selectors (its error is logged) and only when every attestor fails is the
  // call an error: the first attestor's status code, with every attestor's
  // message joined by "; ". With no attestors configured the result is empty.
  absl::StatusOr<Selectors> Attest(const WorkloadProcess& process) const;

  // nullptr when no attestor of that name is configured.
  WorkloadAttestor* Find(absl::string_view name) const;
  // Sorted.
  std::vector<std::string> Names() const;

 private:
  WorkloadAttestorRegistry() = default;
  std::map<std::string, std::unique_ptr<WorkloadAttestor>, std::less<>> attestors_;
};

}  // namespace sigil::attestors::workload
