#include "common/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/util/files.h"

namespace sigil {
namespace {

std::string TempDir() { return ::sigil::testing::MakeTempDir("sigil-file-util"); }

TEST(FileUtil, WriteFileAtomicSetsModeRegardlessOfUmask) {
  std::string dir = TempDir();
  mode_t old = ::umask(0);
  ASSERT_TRUE(WriteFileAtomic(dir + "/key", "secret", 0600).ok());
  ::umask(old);
  struct stat st;
  ASSERT_EQ(::stat((dir + "/key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(dir + "/key").value(), "secret");
}

TEST(FileUtil, WriteFileAtomicReplacesContentsAndLeavesNoTemporary) {
  std::string dir = TempDir();
  ASSERT_TRUE(WriteFileAtomic(dir + "/f", "one", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/f", "two", 0644).ok());
  EXPECT_EQ(ReadFile(dir + "/f").value(), "two");
  EXPECT_EQ(::access((dir + "/f.tmp." + std::to_string(::getpid())).c_str(), F_OK), -1);
}

TEST(FileUtil, WriteFileAtomicIntoMissingDirectoryFails) {
  absl::Status s = WriteFileAtomic("/nonexistent-sigil-dir/f", "x", 0600);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent-sigil-dir/f"), std::string::npos);
}

TEST(FileUtil, ReadMissingFileIsNotFoundNamingPath) {
  auto r = ReadFile("/nonexistent-sigil-file");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent-sigil-file"), std::string::npos);
}

TEST(FileUtil, MakeDirsCreatesParentsWithMode) {
  std::string dir = TempDir();
  ASSERT_TRUE(MakeDirs(dir + "/a/b/c", 0700).ok());
  struct stat st;
  ASSERT_EQ(::stat((dir + "/a/b/c").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(MakeDirs(dir + "/a/b/c", 0700).ok());
}

TEST(FileUtil, MakeDirsThroughAFileFails) {
  std::string dir = TempDir();
  ASSERT_TRUE(WriteFileAtomic(dir + "/file", "x", 0600).ok());
  absl::Status s = MakeDirs(dir + "/file/sub", 0700);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("not a directory"), std::string::npos);
}

TEST(FileUtil, DirName) {
  EXPECT_EQ(DirName("/a/b"), "/a");
  EXPECT_EQ(DirName("/a"), "/");
  EXPECT_EQ(DirName("a"), ".");
}

}  // namespace
}  // namespace sigil
