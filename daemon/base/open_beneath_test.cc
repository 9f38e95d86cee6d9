#include "base/open_beneath.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "base/temp_dir.h"

namespace ckptwatch {
namespace {

using testing::TempDir;
using testing::WriteFile;

class OpenBeneathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(root_ / "sub");
    WriteFile(root_ / "sub/epoch=3.h5", "inside");
    WriteFile(outside_ / "private.h5", "secret");
    fd_.reset(open(root_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(fd_.valid());
  }
  TempDir root_, outside_;
  UniqueFd fd_;
};

std::string ReadAll(int fd) {
  char buffer[64];
  ssize_t n = pread(fd, buffer, sizeof buffer, 0);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
}

TEST_F(OpenBeneathTest, OpensARegularFileForReading) {
  OpenedEntry entry = OpenBeneath(fd_.get(), "sub/epoch=3.h5");
  ASSERT_EQ(entry.kind, EntryKind::kRegular);
  EXPECT_EQ(ReadAll(entry.fd.get()), "inside");
  EXPECT_EQ(fcntl(entry.fd.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(entry.st.st_size, 6);
}

TEST_F(OpenBeneathTest, NeverFollowsASymlinkNamedLikeACheckpoint) {
  ASSERT_EQ(symlink((outside_ / "private.h5").c_str(), (root_ / "ckpt.h5").c_str()), 0);
  OpenedEntry entry = OpenBeneath(fd_.get(), "ckpt.h5");
  EXPECT_EQ(entry.kind, EntryKind::kSymlink);
  EXPECT_FALSE(entry.fd.valid());
  // Even a link to a file inside the root is not followed: the target gets its own verdict.
  ASSERT_EQ(symlink("sub/epoch=3.h5", (root_ / "last.h5").c_str()), 0);
  EXPECT_EQ(OpenBeneath(fd_.get(), "last.h5").kind, EntryKind::kSymlink);
}

TEST_F(OpenBeneathTest, ASymlinkedDirectoryOnTheWayIsRefused) {
  ASSERT_EQ(symlink(outside_.path().c_str(), (root_ / "evil").c_str()), 0);
  OpenedEntry entry = OpenBeneath(fd_.get(), "evil/private.h5");
  EXPECT_EQ(entry.kind, EntryKind::kSymlinkInPath);
  EXPECT_FALSE(entry.fd.valid());
  EXPECT_EQ(OpenBeneath(fd_.get(), "../" + outside_.path().substr(5) + "/private.h5").kind,
            EntryKind::kSymlinkInPath);
  // Not even a symlinked directory that stays inside the root.
  ASSERT_EQ(symlink("sub", (root_ / "alias").c_str()), 0);
  EXPECT_EQ(OpenBeneath(fd_.get(), "alias/epoch=3.h5").kind, EntryKind::kSymlinkInPath);
}

// fs.protected_hardlinks=0 lets anyone link a file they cannot read into a directory they may
// write: that name is never opened for reading (link_disclosure_test.cc has the whole rule).
TEST_F(OpenBeneathTest, AHardLinkThatCouldDiscloseAPrivateFileIsNotOpened) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the directory to another uid";
  ASSERT_EQ(chmod((outside_ / "private.h5").c_str(), 0600), 0);
  ASSERT_EQ(link((outside_ / "private.h5").c_str(), (root_ / "sub/stolen.h5").c_str()), 0);
  // sub/ belongs to another user now: they, not root, may have made the link.
  ASSERT_EQ(chown((root_ / "sub").c_str(), 65534, 65534), 0);
  OpenedEntry entry = OpenBeneath(fd_.get(), "sub/stolen.h5");
  EXPECT_EQ(entry.kind, EntryKind::kWithheld);
  EXPECT_FALSE(entry.fd.valid());
  EXPECT_EQ(entry.st.st_nlink, 2u);
  EXPECT_NE(entry.withheld.find("hard link"), std::string::npos) << entry.withheld;
  // A file of that directory with one name is read as always.
  EXPECT_EQ(OpenBeneath(fd_.get(), "sub/epoch=3.h5").kind, EntryKind::kRegular);
  // Readable by everyone, the link discloses nothing.
  ASSERT_EQ(chmod((outside_ / "private.h5").c_str(), 0644), 0);
  entry = OpenBeneath(fd_.get(), "sub/stolen.h5");
  ASSERT_EQ(entry.kind, EntryKind::kRegular);
  EXPECT_EQ(ReadAll(entry.fd.get()), "secret");
  // Back to private, in a directory only root (the file's owner) may write: the owner's link.
  ASSERT_EQ(chmod((outside_ / "private.h5").c_str(), 0600), 0);
  ASSERT_EQ(chown((root_ / "sub").c_str(), 0, 0), 0);
  ASSERT_EQ(chmod((root_ / "sub").c_str(), 0755), 0);
  EXPECT_EQ(OpenBeneath(fd_.get(), "sub/stolen.h5").kind, EntryKind::kRegular);
  ASSERT_EQ(chmod((root_ / "sub").c_str(), 0775), 0);
  EXPECT_EQ(OpenBeneath(fd_.get(), "sub/stolen.h5").kind, EntryKind::kWithheld);
  // At the root of the watch too.
  ASSERT_EQ(link((outside_ / "private.h5").c_str(), (root_ / "top.h5").c_str()), 0);
  ASSERT_EQ(chmod(root_.path().c_str(), 01777), 0);
  EXPECT_EQ(OpenBeneath(fd_.get(), "top.h5").kind, EntryKind::kWithheld);
}

TEST_F(OpenBeneathTest, FifoSocketAndDirectoryAreStatedNeverOpened) {
  ASSERT_EQ(mkfifo((root_ / "x.h5").c_str(), 0600), 0);
  // Opening a FIFO for reading without O_NONBLOCK would block here forever.
  OpenedEntry fifo = OpenBeneath(fd_.get(), "x.h5");
  EXPECT_EQ(fifo.kind, EntryKind::kNotRegular);
  EXPECT_TRUE(S_ISFIFO(fifo.st.st_mode));
  EXPECT_FALSE(fifo.fd.valid());
  EXPECT_STREQ(FileTypeName(fifo.st.st_mode), "FIFO");

  int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::string socket_path = root_ / "s.h5";
  ASSERT_LT(socket_path.size(), sizeof address.sun_path);
  std::strcpy(address.sun_path, socket_path.c_str());
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  EXPECT_EQ(OpenBeneath(fd_.get(), "s.h5").kind, EntryKind::kNotRegular);
  close(sock);

  std::filesystem::create_directory(root_ / "d.h5");
  OpenedEntry dir = OpenBeneath(fd_.get(), "d.h5");
  EXPECT_EQ(dir.kind, EntryKind::kNotRegular);
  EXPECT_STREQ(FileTypeName(dir.st.st_mode), "directory");
}

TEST_F(OpenBeneathTest, MissingIsMissing) {
  EXPECT_EQ(OpenBeneath(fd_.get(), "nope.h5").kind, EntryKind::kMissing);
  EXPECT_EQ(OpenBeneath(fd_.get(), "sub/epoch=3.h5/x").kind, EntryKind::kMissing);
}

TEST_F(OpenBeneathTest, ProbeDoesNotOpenForReading) {
  OpenedEntry entry = ProbeBeneath(fd_.get(), "sub/epoch=3.h5");
  EXPECT_EQ(entry.kind, EntryKind::kRegular);
  // An O_PATH descriptor cannot be read.
  char c;
  EXPECT_EQ(read(entry.fd.get(), &c, 1), -1);
}

TEST_F(OpenBeneathTest, LinksAreClassifiedWithoutLookingOutside) {
  ASSERT_EQ(symlink("sub/epoch=3.h5", (root_ / "last.h5").c_str()), 0);
  ASSERT_EQ(symlink("../sub/epoch=3.h5", (root_ / "sub/rel.h5").c_str()), 0);
  ASSERT_EQ(symlink("sub/epoch=9.h5", (root_ / "dangling.h5").c_str()), 0);
  ASSERT_EQ(symlink((outside_ / "private.h5").c_str(), (root_ / "abs.h5").c_str()), 0);
  ASSERT_EQ(symlink("../../../../../../../../etc/passwd", (root_ / "up.h5").c_str()), 0);
  std::string text;
  EXPECT_EQ(ResolveLink(fd_.get(), "last.h5", &text), LinkTarget::kInside);
  EXPECT_EQ(text, "sub/epoch=3.h5");
  EXPECT_EQ(ResolveLink(fd_.get(), "sub/rel.h5", &text), LinkTarget::kInside);
  EXPECT_EQ(ResolveLink(fd_.get(), "dangling.h5", &text), LinkTarget::kDangling);
  EXPECT_EQ(ResolveLink(fd_.get(), "abs.h5", &text), LinkTarget::kOutside);
  EXPECT_EQ(ResolveLink(fd_.get(), "up.h5", &text), LinkTarget::kOutside);
}

// Everything here also runs under tests/no_openat2 (CTest: unit.no_openat2), which makes
// openat2 answer ENOSYS so that the fallback walks are what is tested. This says which of the
// two ran, so that neither run can pass on the other's code.
TEST(OpenBeneath, Openat2IsAvailableExactlyWhenTheRunSaysSo) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  const long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how);
  const int error = errno;
  if (fd >= 0) close(static_cast<int>(fd));
  if (std::getenv("CKPTWATCH_TEST_NO_OPENAT2")) {
    EXPECT_EQ(fd, -1);
    EXPECT_EQ(error, ENOSYS) << "the fallback run has openat2: it would test nothing new";
  } else if (fd < 0 && error == ENOSYS) {
    GTEST_SKIP() << "this kernel has no openat2 (before 5.6): only the fallback was tested";
  } else {
    EXPECT_GE(fd, 0) << std::strerror(error);
  }
}

// A symlinked directory anywhere on the way is refused, whether the open is
// one openat2 call or the component-by-component fallback.
TEST_F(OpenBeneathTest, DirectoriesAreOpenedOnlyWithoutASymlinkOnTheWay) {
  ASSERT_EQ(symlink(outside_.path().c_str(), (root_ / "evil").c_str()), 0);
  ASSERT_EQ(symlink("sub", (root_ / "alias").c_str()), 0);
  std::filesystem::create_directories(root_ / "sub/deeper");
  UniqueFd sub(OpenDirectoryBeneath(fd_.get(), "sub/deeper"));
  EXPECT_TRUE(sub.valid()) << std::strerror(errno);
  UniqueFd itself(OpenDirectoryBeneath(fd_.get(), ""));
  EXPECT_TRUE(itself.valid()) << std::strerror(errno);
  for (const std::string path :
       {"evil", "alias", "alias/deeper", "evil/", "..", "sub/../..", "sub/epoch=3.h5"}) {
    SCOPED_TRACE(path);
    UniqueFd fd(OpenDirectoryBeneath(fd_.get(), path));
    EXPECT_FALSE(fd.valid());
  }
  // What a listing of the refused name would have shown is outside the root.
  EXPECT_EQ(OpenBeneath(fd_.get(), "evil/private.h5").kind, EntryKind::kSymlinkInPath);
  EXPECT_EQ(ProbeBeneath(fd_.get(), "alias/epoch=3.h5").kind, EntryKind::kSymlinkInPath);
}

// ResolveLink follows links, but only while they stay inside the root: a link
// through a symlinked directory, a chain of links, or ".." past the root is
// outside, decided before anything outside the root is looked up.
TEST_F(OpenBeneathTest, LinksThroughSymlinkedDirectoriesStayInside) {
  ASSERT_EQ(symlink(outside_.path().c_str(), (root_ / "evil").c_str()), 0);
  const std::string outside_name = std::filesystem::path(outside_.path()).filename();
  ASSERT_EQ(symlink(("../" + outside_name).c_str(), (root_ / "sibling").c_str()), 0);
  ASSERT_EQ(symlink("..", (root_ / "sub/up").c_str()), 0);
  ASSERT_EQ(symlink("sub", (root_ / "alias").c_str()), 0);
  struct Case {
    const char* name;
    const char* target;
    LinkTarget expected;
  };
  const Case cases[] = {
      {"hop.h5", "evil/private.h5", LinkTarget::kOutside},
      {"sib.h5", "sibling/private.h5", LinkTarget::kOutside},
      {"updown.h5", "sub/up/sub/up/../x.h5", LinkTarget::kOutside},
      {"via.h5", "alias/epoch=3.h5", LinkTarget::kInside},
      {"back.h5", "sub/up/sub/epoch=3.h5", LinkTarget::kInside},
      {"dots.h5", "sub/../sub/./epoch=3.h5", LinkTarget::kInside},
      {"chain.h5", "via.h5", LinkTarget::kInside},
      {"chain_out.h5", "hop.h5", LinkTarget::kOutside},
      {"ring1.h5", "ring2.h5", LinkTarget::kOutside},
      {"ring2.h5", "ring1.h5", LinkTarget::kOutside},
      {"file_as_dir.h5", "sub/epoch=3.h5/x", LinkTarget::kDangling},
      // A file is no directory to come back up from.
      {"file_dotdot.h5", "sub/epoch=3.h5/../epoch=3.h5", LinkTarget::kDangling},
      {"later.h5", "alias/epoch=9.h5", LinkTarget::kDangling},
  };
  for (const Case& c : cases) ASSERT_EQ(symlink(c.target, (root_ / c.name).c_str()), 0) << c.name;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string text;
    EXPECT_EQ(ResolveLink(fd_.get(), c.name, &text), c.expected);
    EXPECT_EQ(text, c.target);
  }
  // A link beyond a symlinked directory is not even read: its text is outside.
  ASSERT_EQ(symlink("private.h5", (outside_ / "peek.h5").c_str()), 0);
  std::string text = "stale";
  EXPECT_EQ(ResolveLink(fd_.get(), "evil/peek.h5", &text), LinkTarget::kOutside);
  EXPECT_EQ(text, "");
}

TEST(OpenRegularFile, FollowsSymlinksButOpensOnlyRegularFiles) {
  TempDir dir;
  WriteFile(dir / "a.h5", "data");
  ASSERT_EQ(symlink((dir / "a.h5").c_str(), (dir / "link.h5").c_str()), 0);
  ASSERT_EQ(mkfifo((dir / "fifo.h5").c_str(), 0600), 0);
  OpenedEntry linked = OpenRegularFile(dir / "link.h5");
  ASSERT_EQ(linked.kind, EntryKind::kRegular);
  EXPECT_EQ(ReadAll(linked.fd.get()), "data");
  EXPECT_EQ(OpenRegularFile(dir / "fifo.h5").kind, EntryKind::kNotRegular);
  EXPECT_EQ(OpenRegularFile("/dev/null").kind, EntryKind::kNotRegular);
  EXPECT_EQ(OpenRegularFile(dir / "none.h5").kind, EntryKind::kMissing);
}

}  // namespace
}  // namespace ckptwatch
