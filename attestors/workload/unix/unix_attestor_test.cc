#include "attestors/workload/unix/unix_attestor.h"

#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/util/files.h"
#include "tests/util/shell.h"

namespace sigil::attestors::workload {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// sha256("hello\n"), as `printf 'hello\n' | sha256sum` prints it.
constexpr char kHelloSha256[] = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

// An id no test machine resolves to a name.
constexpr uint32_t kUnnamedId = 4242424;

Selector U(const std::string& value) { return Selector{"unix", value}; }

std::vector<std::string> ValuesOfKind(const Selectors& s, const std::string& kind) {
  std::vector<std::string> out;
  for (const Selector& sel : s) {
    absl::string_view v = sel.value;
    if (absl::ConsumePrefix(&v, kind + ":")) out.emplace_back(v);
  }
  return out;
}

// The output of a shell command (sha256sum, printf).
std::string RunCommand(const std::string& cmd) { return ::sigil::testing::RunShell(cmd).output; }

std::string SelfExe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// A fake procfs tree in a temporary directory.
class FakeProc {
 public:
  const std::string& root() const { return dir_.path(); }

  void AddProcess(int pid, const std::string& status, const std::string& exe_target) {
    std::string dir = dir_.File(std::to_string(pid));
    ::mkdir(dir.c_str(), 0755);
    std::ofstream(dir + "/status") << status;
    if (!exe_target.empty()) {
      ASSERT_EQ(::symlink(exe_target.c_str(), (dir + "/exe").c_str()), 0);
    }
  }
  std::string WriteFile(const std::string& name, const std::string& content) { return dir_.Write(name, content, 0644); }

 private:
  ::sigil::testing::TempDir dir_{"sigil-fakeproc"};
};

std::string Status(const std::string& uid_line, const std::string& gid_line, const std::string& groups) {
  return absl::StrCat("Name:\tapp\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t10\n", uid_line, "\n", gid_line,
                      "\nFDSize:\t64\nGroups:\t", groups, "\nVmPeak:\t1000 kB\n");
}

UnixAttestorOptions FakeOptions(const FakeProc& proc) {
  UnixAttestorOptions o;
  o.proc_root = proc.root();
  return o;
}

TEST(UnixAttestor, NameIsUnix) { EXPECT_EQ(UnixAttestor().name(), "unix"); }

TEST(UnixAttestor, AttestsCurrentProcessFromRealProc) {
  UnixAttestor attestor;
  absl::StatusOr<Selectors> s = attestor.Attest({::getpid(), ::getuid(), ::getgid()});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, Contains(U(absl::StrCat("uid:", ::geteuid()))));
  EXPECT_THAT(*s, Contains(U(absl::StrCat("gid:", ::getegid()))));
  if (struct passwd* pw = ::getpwuid(::geteuid())) {
    EXPECT_THAT(*s, Contains(U(absl::StrCat("user:", pw->pw_name))));
  }
  if (struct group* gr = ::getgrgid(::getegid())) {
    EXPECT_THAT(*s, Contains(U(absl::StrCat("group:", gr->gr_name))));
  }
  EXPECT_THAT(*s, Contains(U("path:" + SelfExe())));
  std::string sha256sum = RunCommand("sha256sum /proc/" + std::to_string(::getpid()) + "/exe");
  ASSERT_GE(sha256sum.size(), 64u) << sha256sum;
  EXPECT_THAT(*s, Contains(U("sha256:" + sha256sum.substr(0, 64))));
  for (const Selector& sel : *s) EXPECT_EQ(sel.type, "unix");
}

TEST(UnixAttestor, DigestOfSameBinaryIsComputedOnce) {
  UnixAttestor attestor;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Selectors> s = attestor.Attest({::getpid(), ::getuid(), ::getgid()});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(ValuesOfKind(*s, "sha256").size(), 1u);
  }
  EXPECT_EQ(attestor.digests_computed(), 1u);
}

TEST(UnixAttestor, ResolvesNamesAndSupplementaryGroupsFromFakeProc) {
  FakeProc proc;
  std::string bin = proc.WriteFile("app", "hello\n");
  // Real uid 1000 but effective 0: the effective id is the one reported.
  proc.AddProcess(
      10, Status("Uid:\t1000\t0\t0\t0", "Gid:\t1000\t0\t0\t0", absl::StrCat("0 ", kUnnamedId, " ")), bin);
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> s = attestor.Attest({10, 1000, 1000});
  ASSERT_TRUE(s.ok()) << s.status();
  std::string root_user = ::getpwuid(0)->pw_name;
  std::string root_group = ::getgrgid(0)->gr_name;
  EXPECT_THAT(*s, Contains(U("uid:0")));
  EXPECT_THAT(*s, Contains(U("user:" + root_user)));
  EXPECT_THAT(*s, Contains(U("gid:0")));
  EXPECT_THAT(*s, Contains(U("group:" + root_group)));
  EXPECT_THAT(*s, Not(Contains(U("uid:1000"))));
  EXPECT_THAT(ValuesOfKind(*s, "supplementary_gid"), ::testing::ElementsAre("0", std::to_string(kUnnamedId)));
  EXPECT_THAT(ValuesOfKind(*s, "supplementary_group"), ::testing::ElementsAre(root_group));
  EXPECT_THAT(*s, Contains(U("path:" + bin)));
  EXPECT_THAT(*s, Contains(U(std::string("sha256:") + kHelloSha256)));
}

TEST(UnixAttestor, UnknownIdsGetNoNameSelectors) {
  FakeProc proc;
  proc.AddProcess(11,
                  Status(absl::StrCat("Uid:\t", kUnnamedId, "\t", kUnnamedId, "\t0\t0"),
                         absl::StrCat("Gid:\t", kUnnamedId, "\t", kUnnamedId, "\t0\t0"), ""),
                  "");
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> s = attestor.Attest({11, 0, 0});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, (Selectors{U(absl::StrCat("uid:", kUnnamedId)), U(absl::StrCat("gid:", kUnnamedId))}));
}

TEST(UnixAttestor, MissingProcessIsNotFound) {
  FakeProc proc;
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> s = attestor.Attest({99, 0, 0});
  ASSERT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("workloadattestor(unix): process 99 not found"));
}

TEST(UnixAttestor, MalformedUidLineIsInternal) {
  FakeProc proc;
  proc.AddProcess(12, Status("Uid:\tabc", "Gid:\t0\t0\t0\t0", ""), "");
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> s = attestor.Attest({12, 0, 0});
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.status().message(), HasSubstr("workloadattestor(unix): "));
  EXPECT_THAT(s.status().message(), HasSubstr("malformed \"Uid:\" line"));
}

TEST(UnixAttestor, MissingGidLineIsInternal) {
  FakeProc proc;
  proc.AddProcess(13, "Name:\tapp\nUid:\t0\t0\t0\t0\n", "");
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> s = attestor.Attest({13, 0, 0});
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.status().message(), HasSubstr("missing or malformed \"Gid:\" line"));
}

TEST(UnixAttestor, MalformedSupplementaryGroupIsInternal) {
  FakeProc proc;
  proc.AddProcess(14, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", "0 wheel"), "");
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> s = attestor.Attest({14, 0, 0});
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.status().message(), HasSubstr("malformed \"Groups:\" entry \"wheel\""));
}

TEST(UnixAttestor, UnavailableBinarySkipsPathAndDigest) {
  FakeProc proc;
  // No exe link at all: what a process of another user looks like to an
  // unprivileged agent (readlink fails), or a kernel thread.
  proc.AddProcess(15, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", ""), "");
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> s = attestor.Attest({15, 0, 0});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(ValuesOfKind(*s, "path").empty());
  EXPECT_TRUE(ValuesOfKind(*s, "sha256").empty());
  EXPECT_THAT(*s, Contains(U("uid:0")));
}

TEST(UnixAttestor, DeletedBinaryKeepsPathButSkipsDigest) {
  FakeProc proc;
  proc.AddProcess(16, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", ""), proc.root() + "/gone");
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> s = attestor.Attest({16, 0, 0});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(ValuesOfKind(*s, "path"), ::testing::ElementsAre(proc.root() + "/gone"));
  EXPECT_TRUE(ValuesOfKind(*s, "sha256").empty());
}

TEST(UnixAttestor, UnreadableBinaryIsInternal) {
  FakeProc proc;
  // A directory opens but cannot be read.
  proc.AddProcess(17, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", ""), proc.root());
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> s = attestor.Attest({17, 0, 0});
  ASSERT_EQ(s.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.status().message(), HasSubstr("workloadattestor(unix): SHA256 digest: read"));
}

TEST(UnixAttestor, BinaryOverSizeLimitFails) {
  FakeProc proc;
  std::string bin = proc.WriteFile("big", std::string(100, 'x'));
  proc.AddProcess(18, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", ""), bin);
  UnixAttestorOptions o = FakeOptions(proc);
  o.workload_size_limit = 99;
  UnixAttestor attestor(o);
  absl::StatusOr<Selectors> s = attestor.Attest({18, 0, 0});
  ASSERT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("exceeds size limit (100 > 99)"));
}

TEST(UnixAttestor, NegativeSizeLimitDisablesDigest) {
  FakeProc proc;
  std::string bin = proc.WriteFile("app", "hello\n");
  proc.AddProcess(19, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", ""), bin);
  UnixAttestorOptions o = FakeOptions(proc);
  o.workload_size_limit = -1;
  UnixAttestor attestor(o);
  absl::StatusOr<Selectors> s = attestor.Attest({19, 0, 0});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, Contains(U("path:" + bin)));
  EXPECT_TRUE(ValuesOfKind(*s, "sha256").empty());
}

TEST(UnixAttestor, PathDiscoveryCanBeDisabled) {
  FakeProc proc;
  std::string bin = proc.WriteFile("app", "hello\n");
  proc.AddProcess(20, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", ""), bin);
  UnixAttestorOptions o = FakeOptions(proc);
  o.discover_workload_path = false;
  UnixAttestor attestor(o);
  absl::StatusOr<Selectors> s = attestor.Attest({20, 0, 0});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(ValuesOfKind(*s, "path").empty());
  EXPECT_TRUE(ValuesOfKind(*s, "sha256").empty());
}

TEST(UnixAttestor, ChangedBinaryIsHashedAgain) {
  FakeProc proc;
  std::string bin = proc.WriteFile("app", "hello\n");
  proc.AddProcess(21, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", ""), bin);
  UnixAttestor attestor(FakeOptions(proc));
  absl::StatusOr<Selectors> first = attestor.Attest({21, 0, 0});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(ValuesOfKind(*first, "sha256"), ::testing::ElementsAre(kHelloSha256));
  proc.WriteFile("app", "hello, world\n");
  absl::StatusOr<Selectors> second = attestor.Attest({21, 0, 0});
  ASSERT_TRUE(second.ok()) << second.status();
  std::string expected = RunCommand("printf 'hello, world\\n' | sha256sum").substr(0, 64);
  EXPECT_THAT(ValuesOfKind(*second, "sha256"), ::testing::ElementsAre(expected));
  EXPECT_EQ(attestor.digests_computed(), 2u);
}

TEST(UnixAttestor, DigestCacheIsBounded) {
  FakeProc proc;
  UnixAttestorOptions o = FakeOptions(proc);
  o.digest_cache_entries = 1;
  UnixAttestor attestor(o);
  std::string a = proc.WriteFile("a", "a");
  std::string b = proc.WriteFile("b", "b");
  proc.AddProcess(22, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", ""), a);
  proc.AddProcess(23, Status("Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0", ""), b);
  ASSERT_TRUE(attestor.Attest({22, 0, 0}).ok());
  ASSERT_TRUE(attestor.Attest({23, 0, 0}).ok());  // evicts a
  ASSERT_TRUE(attestor.Attest({23, 0, 0}).ok());  // cached
  ASSERT_TRUE(attestor.Attest({22, 0, 0}).ok());  // hashed again
  EXPECT_EQ(attestor.digests_computed(), 3u);
}

// An agent without root sees other users' processes but not their binaries.
TEST(UnixAttestor, UnprivilegedAgentSkipsPathOfOtherUsersProcess) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  pid_t target = ::getpid();  // owned by root
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    UnixAttestor attestor;
    absl::StatusOr<Selectors> s = attestor.Attest({target, 0, 0});
    if (!s.ok()) ::_exit(11);
    if (std::find(s->begin(), s->end(), U("uid:0")) == s->end()) ::_exit(12);
    if (!ValuesOfKind(*s, "path").empty()) ::_exit(13);
    if (!ValuesOfKind(*s, "sha256").empty()) ::_exit(14);
    ::_exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "10 setuid failed, 11 attest failed, 12 no uid:0, "
                                        "13 path present, 14 sha256 present";
}

}  // namespace
}  // namespace sigil::attestors::workload
