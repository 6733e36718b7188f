#include "common/daemon.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <sstream>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sigil {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A binary whose commands record what they were given.
struct FakeDaemon {
  std::vector<std::string> called;
  std::vector<std::string> got;

  DaemonCommands Commands() {
    DaemonCommands c;
    c.usage = "Usage: fake <command>\n";
    c.run = [this](const std::vector<std::string>& args) {
      called.push_back("run");
      got = args;
      return 3;
    };
    c.validate = [this](const std::vector<std::string>& args) {
      called.push_back("validate");
      got = args;
      return 4;
    };
    c.is_client = [](const std::string& command) { return command == "entry"; };
    c.run_client = [this](const std::vector<std::string>& args) {
      called.push_back("client");
      got = args;
      return 5;
    };
    return c;
  }
};

TEST(RunDaemonMain, NoCommandPrintsUsageAndFails) {
  FakeDaemon d;
  std::ostringstream err;
  EXPECT_EQ(RunDaemonMain({}, d.Commands(), err), 1);
  EXPECT_EQ(err.str(), "Usage: fake <command>\n");
  EXPECT_TRUE(d.called.empty());
}

TEST(RunDaemonMain, HelpPrintsUsageAndSucceeds) {
  for (const char* help : {"-h", "--help", "help"}) {
    FakeDaemon d;
    std::ostringstream err;
    EXPECT_EQ(RunDaemonMain({help}, d.Commands(), err), 0) << help;
    EXPECT_EQ(err.str(), "Usage: fake <command>\n") << help;
  }
}

TEST(RunDaemonMain, RunAndValidateGetTheRemainingArguments) {
  FakeDaemon d;
  std::ostringstream err;
  EXPECT_EQ(RunDaemonMain({"run", "-config", "x.yaml"}, d.Commands(), err), 3);
  EXPECT_THAT(d.got, ElementsAre("-config", "x.yaml"));
  EXPECT_EQ(RunDaemonMain({"validate"}, d.Commands(), err), 4);
  EXPECT_TRUE(d.got.empty());
  EXPECT_THAT(d.called, ElementsAre("run", "validate"));
  EXPECT_EQ(err.str(), "");
}

TEST(RunDaemonMain, ClientCommandsGetTheWholeCommandLine) {
  FakeDaemon d;
  std::ostringstream err;
  EXPECT_EQ(RunDaemonMain({"entry", "show"}, d.Commands(), err), 5);
  EXPECT_THAT(d.got, ElementsAre("entry", "show"));
}

TEST(RunDaemonMain, UnknownCommandIsNamedBeforeTheUsage) {
  FakeDaemon d;
  std::ostringstream err;
  EXPECT_EQ(RunDaemonMain({"frobnicate"}, d.Commands(), err), 1);
  EXPECT_EQ(err.str(), "Unknown command \"frobnicate\"\n\nUsage: fake <command>\n");
  EXPECT_TRUE(d.called.empty());
}

TEST(RunDaemonMain, WithoutClientCommandsEveryOtherWordIsUnknown) {
  FakeDaemon d;
  DaemonCommands commands = d.Commands();
  commands.is_client = nullptr;
  commands.run_client = nullptr;
  std::ostringstream err;
  EXPECT_EQ(RunDaemonMain({"entry"}, commands, err), 1);
  EXPECT_THAT(err.str(), StartsWith("Unknown command \"entry\""));
}

class ParseDaemonFlagsTest : public ::testing::Test {
 protected:
  ParseDaemonFlagsTest() : flags_("run") {
    flags_.String("config", &config_, "", "Path to a config file");
  }

  cli::FlagSet flags_;
  std::string config_;
  std::ostringstream err_;
};

TEST_F(ParseDaemonFlagsTest, GoodFlagsGoOn) {
  EXPECT_EQ(ParseDaemonFlags(flags_, {"-config", "a.yaml"}, err_), std::nullopt);
  EXPECT_EQ(config_, "a.yaml");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(ParseDaemonFlagsTest, HelpPrintsUsageAndExitsZero) {
  EXPECT_EQ(ParseDaemonFlags(flags_, {"-h"}, err_), 0);
  EXPECT_EQ(err_.str(), flags_.Usage());
}

TEST_F(ParseDaemonFlagsTest, UnknownFlagIsNamedAndExitsOne) {
  EXPECT_EQ(ParseDaemonFlags(flags_, {"-cofnig", "a.yaml"}, err_), 1);
  EXPECT_THAT(err_.str(), StartsWith("flag provided but not defined: -cofnig\n"));
  EXPECT_THAT(err_.str(), HasSubstr(flags_.Usage()));
}

TEST_F(ParseDaemonFlagsTest, LeftoverArgumentIsNamedAndExitsOne) {
  EXPECT_EQ(ParseDaemonFlags(flags_, {"-config", "a.yaml", "extra"}, err_), 1);
  EXPECT_THAT(err_.str(), StartsWith("unexpected argument: extra\n"));
}

TEST_F(ParseDaemonFlagsTest, SettingsAreResolvedAfterTheFlags) {
  int exit_code = -1;
  std::optional<std::string> settings = ParseDaemonSettings<std::string>(
      flags_, {"-config", "a.yaml"},
      [&]() -> absl::StatusOr<std::string> { return "from " + config_; }, err_, &exit_code);
  EXPECT_EQ(settings, "from a.yaml");
  EXPECT_EQ(exit_code, -1);
  EXPECT_EQ(err_.str(), "");
}

TEST_F(ParseDaemonFlagsTest, UnresolvedSettingsArePrintedAndExitOne) {
  int exit_code = -1;
  std::optional<std::string> settings = ParseDaemonSettings<std::string>(
      flags_, {},
      []() -> absl::StatusOr<std::string> {
        return absl::InvalidArgumentError("server.trust_domain: required");
      },
      err_, &exit_code);
  EXPECT_EQ(settings, std::nullopt);
  EXPECT_EQ(exit_code, 1);
  EXPECT_EQ(err_.str(), "Error: server.trust_domain: required\n");
}

TEST_F(ParseDaemonFlagsTest, HelpDoesNotResolveSettings) {
  int exit_code = -1;
  bool resolved = false;
  std::optional<std::string> settings = ParseDaemonSettings<std::string>(
      flags_, {"-help"},
      [&]() -> absl::StatusOr<std::string> {
        resolved = true;
        return "x";
      },
      err_, &exit_code);
  EXPECT_EQ(settings, std::nullopt);
  EXPECT_EQ(exit_code, 0);
  EXPECT_FALSE(resolved);
}

// Runs `body` in a forked child (signal masks are per process, and other
// tests' threads must not see the signals) and returns its exit code, or -1
// when it did not exit normally.
int InChild(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ShutdownSignalThread, SigtermCallsShutdownOnce) {
  EXPECT_EQ(InChild([] {
              BlockShutdownSignals();
              std::atomic<int> calls{0};
              absl::Notification called;
              ShutdownSignalThread signals([&] {
                ++calls;
                called.Notify();
              });
              ::kill(::getpid(), SIGTERM);
              if (!called.WaitForNotificationWithTimeout(absl::Seconds(10))) return 2;
              signals.Stop();
              signals.Stop();
              return calls.load() == 1 ? 0 : 3;
            }),
            0);
}

TEST(ShutdownSignalThread, SigintAlsoShutsDown) {
  EXPECT_EQ(InChild([] {
              BlockShutdownSignals();
              absl::Notification called;
              ShutdownSignalThread signals([&] { called.Notify(); });
              ::kill(::getpid(), SIGINT);
              return called.WaitForNotificationWithTimeout(absl::Seconds(10)) ? 0 : 2;
            }),
            0);
}

TEST(ShutdownSignalThread, StopWithoutSignalCallsShutdown) {
  EXPECT_EQ(InChild([] {
              BlockShutdownSignals();
              std::atomic<int> calls{0};
              {
                ShutdownSignalThread signals([&] { ++calls; });
                signals.Stop();
                if (calls.load() != 1) return 2;
              }
              return calls.load() == 1 ? 0 : 3;
            }),
            0);
}

TEST(BlockShutdownSignals, WritingToAClosedPipeFailsInsteadOfKilling) {
  EXPECT_EQ(InChild([] {
              BlockShutdownSignals();
              int fds[2];
              if (::pipe(fds) != 0) return 2;
              ::close(fds[0]);
              ssize_t n = ::write(fds[1], "x", 1);
              return n == -1 && errno == EPIPE ? 0 : 3;
            }),
            0);
}

}  // namespace
}  // namespace sigil
