#include "ca/key_manager.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "ca/ca_test_util.h"
#include "common/file_util.h"
#include "nlohmann/json.hpp"
#include "spiffe/crypto/encoding.h"

namespace sigil::ca {
namespace {

using crypto::KeyType;
using testing::TempDir;
using testing::WriteTestFile;

mode_t FileMode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// ---- MemoryKeyManager ----

TEST(MemoryKeyManager, GeneratedKeyIsReturnedByGetKey) {
  MemoryKeyManager keys;
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey generated, keys.GenerateKey("a", KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey got, keys.GetKey("a"));
  EXPECT_EQ(got.public_key(), generated.public_key());
  EXPECT_STREQ(keys.name(), "memory");
}

TEST(MemoryKeyManager, GenerateHonoursKeyType) {
  MemoryKeyManager keys;
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey p384, keys.GenerateKey("a", KeyType::kEcP384));
  EXPECT_EQ(p384.public_key().curve_name(), "P-384");
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey rsa, keys.GenerateKey("b", KeyType::kRsa2048));
  EXPECT_EQ(rsa.algorithm(), crypto::KeyAlgorithm::kRsa);
}

TEST(MemoryKeyManager, GenerateReplacesExistingKey) {
  MemoryKeyManager keys;
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey first, keys.GenerateKey("a", KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey second, keys.GenerateKey("a", KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey got, keys.GetKey("a"));
  EXPECT_NE(first.public_key(), second.public_key());
  EXPECT_EQ(got.public_key(), second.public_key());
}

TEST(MemoryKeyManager, MissingKeyIsNotFound) {
  MemoryKeyManager keys;
  EXPECT_STATUS(keys.GetKey("nope"), absl::StatusCode::kNotFound, "\"nope\"");
}

TEST(MemoryKeyManager, DeleteForgetsKeyAndIsIdempotent) {
  MemoryKeyManager keys;
  ASSERT_OK(keys.GenerateKey("a", KeyType::kEcP256));
  EXPECT_OK(keys.DeleteKey("a"));
  EXPECT_STATUS(keys.GetKey("a"), absl::StatusCode::kNotFound, "\"a\"");
  EXPECT_OK(keys.DeleteKey("a"));
}

TEST(MemoryKeyManager, EmptyKeyIdIsInvalid) {
  MemoryKeyManager keys;
  EXPECT_STATUS(keys.GenerateKey("", KeyType::kEcP256), absl::StatusCode::kInvalidArgument,
                "key_id");
}

// ---- DiskKeyManager ----

TEST(DiskKeyManager, KeysSurviveRestart) {
  TempDir dir;
  const std::string path = dir.File("keys.json");
  std::string der_a, der_b;
  {
    ASSERT_OK_AND_ASSIGN(auto keys, DiskKeyManager::Create(path));
    ASSERT_OK_AND_ASSIGN(crypto::PrivateKey a, keys->GenerateKey("x509-ca-a", KeyType::kEcP256));
    ASSERT_OK_AND_ASSIGN(crypto::PrivateKey b, keys->GenerateKey("jwt-b", KeyType::kEcP384));
    der_a = a.ToPkcs8Der();
    der_b = b.ToPkcs8Der();
  }
  ASSERT_OK_AND_ASSIGN(auto reopened, DiskKeyManager::Create(path));
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey a, reopened->GetKey("x509-ca-a"));
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey b, reopened->GetKey("jwt-b"));
  EXPECT_EQ(a.ToPkcs8Der(), der_a);
  EXPECT_EQ(b.ToPkcs8Der(), der_b);
  EXPECT_STREQ(reopened->name(), "disk");
}

TEST(DiskKeyManager, FileIsOwnerOnlyJsonOfPkcs8Keys) {
  TempDir dir;
  const std::string path = dir.File("keys.json");
  ASSERT_OK_AND_ASSIGN(auto keys, DiskKeyManager::Create(path));
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey key, keys->GenerateKey("k1", KeyType::kEcP256));
  EXPECT_EQ(FileMode(path), 0600u);
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(path));
  nlohmann::json doc = nlohmann::json::parse(text);
  ASSERT_TRUE(doc["keys"].is_object());
  ASSERT_EQ(doc["keys"].size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::string der, crypto::Base64Decode(doc["keys"]["k1"].get<std::string>()));
  EXPECT_EQ(der, key.ToPkcs8Der());
}

TEST(DiskKeyManager, CreatesMissingDirectoryOwnerOnly) {
  TempDir dir;
  const std::string path = dir.File("a/b/keys.json");
  ASSERT_OK_AND_ASSIGN(auto keys, DiskKeyManager::Create(path));
  EXPECT_EQ(FileMode(dir.File("a/b")), 0700u);
  ASSERT_OK(keys->GenerateKey("k", KeyType::kEcP256));
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(DiskKeyManager, RefusesKeysFileReadableByOthers) {
  TempDir dir;
  const std::string path = dir.File("keys.json");
  WriteTestFile(path, R"({"keys": {}})", 0644);
  EXPECT_STATUS(DiskKeyManager::Create(path), absl::StatusCode::kFailedPrecondition,
                absl::StrCat("\"", path, "\" has mode 0644, wider than 0600"));
}

TEST(DiskKeyManager, RefusesKeysFileWithGroupOrExecuteBits) {
  TempDir dir;
  const std::string path = dir.File("keys.json");
  for (mode_t mode : {0640, 0700, 0660}) {
    WriteTestFile(path, R"({"keys": {}})", mode);
    EXPECT_STATUS(DiskKeyManager::Create(path), absl::StatusCode::kFailedPrecondition, path);
  }
  WriteTestFile(path, R"({"keys": {}})", 0400);
  EXPECT_OK(DiskKeyManager::Create(path));
}

TEST(DiskKeyManager, MalformedFileIsInvalidArgumentNamingPath) {
  TempDir dir;
  const std::string path = dir.File("keys.json");
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {R"({"other": 1})", "\"keys\" is missing"},
      {R"({"keys": {"k": 5}})", "key \"k\" is not a string"},
      {R"({"keys": {"k": "!!!"}})", "key \"k\" is not valid base64"},
      {R"({"keys": {"k": "AAAA"}})", "key \"k\" is not a valid PKCS#8 key"},
  };
  for (const auto& [content, why] : cases) {
    WriteTestFile(path, content, 0600);
    auto created = DiskKeyManager::Create(path);
    EXPECT_STATUS(created, absl::StatusCode::kInvalidArgument, why);
    EXPECT_STATUS(created, absl::StatusCode::kInvalidArgument, path);
  }
}

TEST(DiskKeyManager, KeysPathThatIsADirectoryIsInvalid) {
  TempDir dir;
  EXPECT_STATUS(DiskKeyManager::Create(dir.path()), absl::StatusCode::kInvalidArgument,
                "not a regular file");
  EXPECT_STATUS(DiskKeyManager::Create(""), absl::StatusCode::kInvalidArgument, "keys_path");
}

TEST(DiskKeyManager, KeysPathUnderARegularFileIsFailedPrecondition) {
  TempDir dir;
  WriteTestFile(dir.File("file"), "x");
  const std::string path = dir.File("file/keys.json");
  EXPECT_STATUS(DiskKeyManager::Create(path), absl::StatusCode::kFailedPrecondition, path);
}

TEST(DiskKeyManager, DeletePersists) {
  TempDir dir;
  const std::string path = dir.File("keys.json");
  {
    ASSERT_OK_AND_ASSIGN(auto keys, DiskKeyManager::Create(path));
    ASSERT_OK(keys->GenerateKey("a", KeyType::kEcP256));
    ASSERT_OK(keys->GenerateKey("b", KeyType::kEcP256));
    EXPECT_OK(keys->DeleteKey("a"));
    EXPECT_OK(keys->DeleteKey("never-existed"));
  }
  ASSERT_OK_AND_ASSIGN(auto reopened, DiskKeyManager::Create(path));
  EXPECT_STATUS(reopened->GetKey("a"), absl::StatusCode::kNotFound, "\"a\"");
  EXPECT_OK(reopened->GetKey("b"));
}

TEST(DiskKeyManager, FailedSaveKeepsPreviousKey) {
  TempDir dir;
  const std::string path = dir.File("keys.json");
  ASSERT_OK_AND_ASSIGN(auto keys, DiskKeyManager::Create(path));
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey original, keys->GenerateKey("a", KeyType::kEcP256));
  // A directory where the atomic writer puts its temporary file makes every
  // save fail (this works even for root, unlike permission bits).
  const std::string blocker = absl::StrCat(path, ".tmp.", ::getpid());
  ASSERT_TRUE(std::filesystem::create_directory(blocker));

  auto replaced = keys->GenerateKey("a", KeyType::kEcP256);
  EXPECT_FALSE(replaced.ok());
  EXPECT_NE(replaced.status().message().find(path), absl::string_view::npos)
      << replaced.status();
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey still, keys->GetKey("a"));
  EXPECT_EQ(still.public_key(), original.public_key());

  EXPECT_FALSE(keys->GenerateKey("b", KeyType::kEcP256).ok());
  EXPECT_STATUS(keys->GetKey("b"), absl::StatusCode::kNotFound, "\"b\"");

  EXPECT_FALSE(keys->DeleteKey("a").ok());
  EXPECT_OK(keys->GetKey("a"));

  std::filesystem::remove(blocker);
  ASSERT_OK_AND_ASSIGN(auto reopened, DiskKeyManager::Create(path));
  ASSERT_OK_AND_ASSIGN(crypto::PrivateKey on_disk, reopened->GetKey("a"));
  EXPECT_EQ(on_disk.public_key(), original.public_key());
}

}  // namespace
}  // namespace sigil::ca
