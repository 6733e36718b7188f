#pragma once

// Running a shell command line (the openssl CLI, mostly) from a test, to
// check our output with an independent tool. Header-only, no dependencies.
// tests/util/process.h runs argv vectors without a shell instead.

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace sigil::testing {

struct ShellResult {
  // The command's exit status; -1 when the shell could not be started or the
  // command was killed by a signal.
  int exit_code = -1;
  // stdout and stderr, interleaved as written.
  std::string output;
};

// Runs `command` through /bin/sh and waits for it; no timeout. The command
// is shell text: quote any path that may hold spaces.
inline ShellResult RunShell(const std::string& command) {
  ShellResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    result.output = "popen failed";
    return result;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace sigil::testing
