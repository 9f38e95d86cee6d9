#include "base/link_disclosure.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "base/temp_dir.h"
#include "base/unique_fd.h"

namespace ckptwatch {
namespace {

constexpr uid_t kOwner = 1000, kOther = 1001;

struct stat File(nlink_t links, mode_t mode, uid_t uid = kOwner) {
  struct stat st {};
  st.st_mode = S_IFREG | mode;
  st.st_nlink = links;
  st.st_uid = uid;
  return st;
}

struct stat Dir(mode_t mode, uid_t uid) {
  struct stat st {};
  st.st_mode = S_IFDIR | mode;
  st.st_uid = uid;
  return st;
}

class LinkDisclosureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_ / "ckpt.h5", "weights");
    fd_.reset(open((dir_ / "ckpt.h5").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd_.valid());
  }
  testing::TempDir dir_;
  UniqueFd fd_;
};

TEST_F(LinkDisclosureTest, AFileWithOneNameIsAlwaysRead) {
  EXPECT_EQ(WhyLinkWithheld(File(1, 0600), fd_.get(), Dir(01777, 0)), "");
}

TEST_F(LinkDisclosureTest, ALinkAnyoneMayHaveMadeToAPrivateFileIsWithheld) {
  // Group-writable (a shared run directory), sticky and world-writable (/tmp), or another
  // user's directory: someone other than the owner may have made the link.
  for (const struct stat& dir :
       {Dir(02775, kOwner), Dir(01777, 0), Dir(0755, kOther), Dir(0757, kOwner)}) {
    const std::string why = WhyLinkWithheld(File(2, 0600, 0), fd_.get(), dir);
    EXPECT_NE(why.find("not read: a file with 2 names (a hard link), of uid 0, mode 0600"),
              std::string::npos)
        << why;
  }
  // Readable by its group only: other users who may write the directory still could not read it.
  EXPECT_NE(WhyLinkWithheld(File(3, 0640), fd_.get(), Dir(0775, kOwner)), "");
  // Readable by others but not by its group: the group's members could not.
  EXPECT_NE(WhyLinkWithheld(File(2, 0604), fd_.get(), Dir(0777, kOwner)), "");
}

TEST_F(LinkDisclosureTest, ALinkThatDisclosesNothingIsRead) {
  // Everyone may read it anyway, in any directory.
  EXPECT_EQ(WhyLinkWithheld(File(2, 0644), fd_.get(), Dir(01777, 0)), "");
  // Only its owner, or root, may write the directory: the link is theirs.
  EXPECT_EQ(WhyLinkWithheld(File(2, 0600), fd_.get(), Dir(0755, kOwner)), "");
  EXPECT_EQ(WhyLinkWithheld(File(2, 0600), fd_.get(), Dir(0700, kOwner)), "");
  EXPECT_EQ(WhyLinkWithheld(File(2, 0600), fd_.get(), Dir(0755, 0)), "");
}

TEST_F(LinkDisclosureTest, AnAclMakesAWorldReadableFileNotReadableByAll) {
  // user::rw- user:65534:--- group::r-- mask::r-- other::r-- (the kernel's xattr layout): mode
  // 0644, yet uid 65534 may not read it.
  struct Entry {
    std::uint16_t tag, perm;
    std::uint32_t id;
  };
  const std::uint32_t version = 2;
  const Entry entries[] = {
      {0x01, 6, ~0u}, {0x02, 0, 65534}, {0x04, 4, ~0u}, {0x10, 4, ~0u}, {0x20, 4, ~0u}};
  char acl[sizeof version + sizeof entries];
  std::memcpy(acl, &version, sizeof version);
  std::memcpy(acl + sizeof version, entries, sizeof entries);
  ASSERT_EQ(fsetxattr(fd_.get(), "system.posix_acl_access", acl, sizeof acl, 0), 0)
      << std::strerror(errno);
  struct stat st;
  ASSERT_EQ(fstat(fd_.get(), &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0644u);
  const std::string why = WhyLinkWithheld(File(2, 0644), fd_.get(), Dir(0775, kOther));
  EXPECT_NE(why.find("mode 0644 with an ACL"), std::string::npos) << why;
  // Its owner's own directory is still its owner's.
  EXPECT_EQ(WhyLinkWithheld(File(2, 0644), fd_.get(), Dir(0755, kOwner)), "");
}

}  // namespace
}  // namespace ckptwatch
