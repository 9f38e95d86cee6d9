#include "core/access_check.h"

#include <acl/libacl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/acl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace ckptwatch {
namespace {

struct Identity {
  unsigned uid;
  std::vector<unsigned> gids;
  std::string who;  // "user trainer (uid 1000)"
};

// Nobody's uid stands in for "some member of a group": it matches no owner
// but nobody, whose group bits would be wrong anyway.
constexpr unsigned kGroupProbeUid = 0xfffffffe;

Identity IdentityOf(const Principal& p) {
  if (p.kind == Principal::Kind::kGroup)
    return {kGroupProbeUid, {p.id}, "members of group " + p.name + " (gid " + std::to_string(p.id) + ")"};
  Identity id{p.id, {}, "user " + p.name + " (uid " + std::to_string(p.id) + ")"};
  passwd pw{}, *found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwuid_r(p.id, &pw, buffer.data(), buffer.size(), &found) == 0 && found) {
    int count = 64;
    std::vector<gid_t> groups(count);
    if (getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count) < 0) {
      groups.resize(count);
      getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count);
    }
    groups.resize(std::max(count, 0));
    for (gid_t g : groups) id.gids.push_back(g);
    if (id.gids.empty()) id.gids.push_back(found->pw_gid);
  }
  return id;
}

std::string Mode(const struct stat& st) {
  char text[64];
  std::snprintf(text, sizeof text, "mode %04o, owner uid %u gid %u",
                static_cast<unsigned>(st.st_mode & 07777), static_cast<unsigned>(st.st_uid),
                static_cast<unsigned>(st.st_gid));
  return text;
}

bool Has(const std::vector<unsigned>& gids, unsigned gid) {
  return std::find(gids.begin(), gids.end(), gid) != gids.end();
}

unsigned AclPerms(acl_entry_t entry) {
  acl_permset_t permset;
  if (acl_get_permset(entry, &permset) != 0) return 0;
  return (acl_get_perm(permset, ACL_READ) == 1 ? 4u : 0u) | (acl_get_perm(permset, ACL_WRITE) == 1 ? 2u : 0u) |
         (acl_get_perm(permset, ACL_EXECUTE) == 1 ? 1u : 0u);
}

// POSIX.1e access check algorithm over an extended ACL. Returns the granted
// bits, or -1 when the object has no extended ACL (mode bits decide).
int AclGrant(const std::string& path, const struct stat& st, unsigned uid, const std::vector<unsigned>& gids) {
  if (acl_extended_file_nofollow(path.c_str()) != 1) return -1;
  std::unique_ptr<void, int (*)(void*)> acl(acl_get_file(path.c_str(), ACL_TYPE_ACCESS), acl_free);
  if (!acl) return -1;
  unsigned user_obj = 0, other = 0, mask = 7, named_user = 0;
  bool named_user_match = false, group_match = false;
  unsigned group_union = 0;
  acl_entry_t entry;
  for (int which = ACL_FIRST_ENTRY; acl_get_entry(static_cast<acl_t>(acl.get()), which, &entry) == 1;
       which = ACL_NEXT_ENTRY) {
    acl_tag_t tag;
    if (acl_get_tag_type(entry, &tag) != 0) continue;
    unsigned perms = AclPerms(entry);
    switch (tag) {
      case ACL_USER_OBJ: user_obj = perms; break;
      case ACL_OTHER: other = perms; break;
      case ACL_MASK: mask = perms; break;
      case ACL_GROUP_OBJ:
        if (Has(gids, st.st_gid)) group_match = true, group_union |= perms;
        break;
      case ACL_USER: {
        auto* q = static_cast<uid_t*>(acl_get_qualifier(entry));
        if (q && *q == uid) named_user_match = true, named_user = perms;
        if (q) acl_free(q);
        break;
      }
      case ACL_GROUP: {
        auto* q = static_cast<gid_t*>(acl_get_qualifier(entry));
        if (q && Has(gids, *q)) group_match = true, group_union |= perms;
        if (q) acl_free(q);
        break;
      }
      default: break;
    }
  }
  if (uid == st.st_uid) return static_cast<int>(user_obj);
  if (named_user_match) return static_cast<int>(named_user & mask);
  if (group_match) return static_cast<int>(group_union & mask);
  return static_cast<int>(other);
}

std::string WantText(unsigned want) {
  std::string text;
  if (want & 4) text += "read";
  if (want & 2) text += text.empty() ? "write" : "/write";
  if (want & 1) text += text.empty() ? "search" : "/search";
  return text;
}

// The access decision for `uid`/`gids` wanting `want` (a mask of 4 read, 2 write, 1 execute) on
// the object at `path`; false with `*why`.
bool Permits(const std::string& path, unsigned uid, const std::vector<unsigned>& gids, unsigned want,
             std::string* why) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    *why = "stat " + path + ": " + std::strerror(errno);
    return false;
  }
  if (uid == 0) return true;  // root: CAP_DAC_OVERRIDE (execute needs any x bit; close enough)
  int granted = AclGrant(path, st, uid, gids);
  if (granted < 0) {
    const unsigned mode = st.st_mode;
    if (uid == st.st_uid) granted = static_cast<int>((mode >> 6) & 7);
    else if (Has(gids, st.st_gid)) granted = static_cast<int>((mode >> 3) & 7);
    else granted = static_cast<int>(mode & 7);
  }
  if ((static_cast<unsigned>(granted) & want) == want) return true;
  *why = WantText(want) + " " + path + " (" + Mode(st) +
         (acl_extended_file_nofollow(path.c_str()) == 1 ? ", with an ACL" : "") + ")";
  return false;
}

// Every ancestor of `path` needs search (x) permission.
std::string CheckPath(const std::string& path, const Identity& id, unsigned want_on_target) {
  std::vector<std::string> ancestors;
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1))
    ancestors.push_back(path.substr(0, slash));
  ancestors.insert(ancestors.begin(), "/");
  std::string why;
  for (const std::string& dir : ancestors) {
    if (dir == path) break;
    if (!Permits(dir, id.uid, id.gids, 1, &why)) return id.who + " cannot reach " + path + ": " + why;
  }
  if (!Permits(path, id.uid, id.gids, want_on_target, &why)) return id.who + " cannot " + why;
  return "";
}

}  // namespace

std::string WhyCannotRead(const std::string& path, const Principal& reader) {
  return CheckPath(path, IdentityOf(reader), 4);
}

std::string WhyCannotCreateIn(const std::string& dir, const Principal& writer) {
  return CheckPath(dir, IdentityOf(writer), 3);
}

}  // namespace ckptwatch
