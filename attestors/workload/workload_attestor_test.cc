#include "attestors/workload/workload_attestor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace sigil::attestors::workload {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class FakeAttestor final : public WorkloadAttestor {
 public:
  FakeAttestor(std::string name, absl::StatusOr<Selectors> result)
      : name_(std::move(name)), result_(std::move(result)) {}
  const std::string& name() const override { return name_; }
  absl::StatusOr<Selectors> Attest(const WorkloadProcess& process) override {
    last_pid_ = process.pid;
    return result_;
  }
  pid_t last_pid_ = 0;

 private:
  std::string name_;
  absl::StatusOr<Selectors> result_;
};

std::unique_ptr<WorkloadAttestor> Fake(const std::string& name, absl::StatusOr<Selectors> result) {
  return std::make_unique<FakeAttestor>(name, std::move(result));
}

std::unique_ptr<WorkloadAttestorRegistry> MakeRegistry(
    std::vector<std::unique_ptr<WorkloadAttestor>> attestors) {
  absl::StatusOr<std::unique_ptr<WorkloadAttestorRegistry>> r =
      WorkloadAttestorRegistry::Create(std::move(attestors));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

TEST(WorkloadAttestorRegistry, DuplicateNameIsRejected) {
  std::vector<std::unique_ptr<WorkloadAttestor>> list;
  list.push_back(Fake("unix", Selectors{}));
  list.push_back(Fake("unix", Selectors{}));
  absl::StatusOr<std::unique_ptr<WorkloadAttestorRegistry>> r =
      WorkloadAttestorRegistry::Create(std::move(list));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("workload attestor \"unix\" is configured twice"));
}

TEST(WorkloadAttestorRegistry, NullAttestorIsRejected) {
  std::vector<std::unique_ptr<WorkloadAttestor>> list;
  list.push_back(nullptr);
  absl::StatusOr<std::unique_ptr<WorkloadAttestorRegistry>> r =
      WorkloadAttestorRegistry::Create(std::move(list));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WorkloadAttestorRegistry, FindAndNames) {
  std::vector<std::unique_ptr<WorkloadAttestor>> list;
  list.push_back(Fake("unix", Selectors{}));
  list.push_back(Fake("docker", Selectors{}));
  auto registry = MakeRegistry(std::move(list));
  ASSERT_NE(registry, nullptr);
  EXPECT_THAT(registry->Names(), ElementsAre("docker", "unix"));
  ASSERT_NE(registry->Find("unix"), nullptr);
  EXPECT_EQ(registry->Find("unix")->name(), "unix");
  EXPECT_EQ(registry->Find("k8s"), nullptr);
}

TEST(WorkloadAttestorRegistry, ReturnsSortedUnionWithoutDuplicates) {
  std::vector<std::unique_ptr<WorkloadAttestor>> list;
  list.push_back(Fake("unix", Selectors{{"unix", "uid:0"}, {"unix", "gid:0"}}));
  list.push_back(Fake("docker", Selectors{{"docker", "image_id:x"}, {"unix", "uid:0"}}));
  auto registry = MakeRegistry(std::move(list));
  ASSERT_NE(registry, nullptr);
  absl::StatusOr<Selectors> s = registry->Attest({42, 0, 0});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, ElementsAre(Selector{"docker", "image_id:x"}, Selector{"unix", "gid:0"},
                              Selector{"unix", "uid:0"}));
  EXPECT_EQ(static_cast<FakeAttestor*>(registry->Find("unix"))->last_pid_, 42);
}

TEST(WorkloadAttestorRegistry, FailingAttestorContributesNothingWhileOthersSucceed) {
  std::vector<std::unique_ptr<WorkloadAttestor>> list;
  list.push_back(Fake("unix", Selectors{{"unix", "uid:0"}}));
  list.push_back(Fake("docker", absl::UnavailableError("workloadattestor(docker): daemon down")));
  auto registry = MakeRegistry(std::move(list));
  ASSERT_NE(registry, nullptr);
  absl::StatusOr<Selectors> s = registry->Attest({42, 0, 0});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, ElementsAre(Selector{"unix", "uid:0"}));
}

TEST(WorkloadAttestorRegistry, AllFailingGivesFirstCodeAndEveryMessage) {
  std::vector<std::unique_ptr<WorkloadAttestor>> list;
  list.push_back(Fake("unix", absl::NotFoundError("workloadattestor(unix): process 42 not found")));
  list.push_back(Fake("docker", absl::UnavailableError("workloadattestor(docker): daemon down")));
  auto registry = MakeRegistry(std::move(list));
  ASSERT_NE(registry, nullptr);
  absl::StatusOr<Selectors> s = registry->Attest({42, 0, 0});
  // Attestors run in name order: docker first.
  ASSERT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.status().message(), HasSubstr("workloadattestor(docker): daemon down"));
  EXPECT_THAT(s.status().message(), HasSubstr("workloadattestor(unix): process 42 not found"));
}

TEST(WorkloadAttestorRegistry, EmptyRegistryGivesNoSelectors) {
  auto registry = MakeRegistry({});
  ASSERT_NE(registry, nullptr);
  absl::StatusOr<Selectors> s = registry->Attest({42, 0, 0});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, IsEmpty());
}

}  // namespace
}  // namespace sigil::attestors::workload
