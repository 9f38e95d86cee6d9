#include "verify/sets/resume_pointer.h"

#include <algorithm>
#include <cstdio>

#include "verify/sets/set_names.h"

namespace ckptwatch {
namespace {

constexpr std::size_t kMaxPointerBytes = 64 * 1024;

std::string TrimBlanks(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

}  // namespace

std::string TfCheckpointStatePath(const std::string& text) {
  // CheckpointState text format: model_checkpoint_path: "PREFIX" (C-escaped string).
  const std::string key = "model_checkpoint_path:";
  std::size_t at = 0;
  while ((at = text.find(key, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') break;
    at += key.size();
  }
  if (at == std::string::npos) return "";
  std::size_t q = text.find('"', at + key.size());
  if (q == std::string::npos) return "";
  std::string out;
  for (std::size_t i = q + 1; i < text.size() && text[i] != '"' && text[i] != '\n'; ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) ++i;
    out.push_back(text[i]);
  }
  return out;
}

std::vector<ResumePointer> FindResumePointers(const std::shared_ptr<const SetDir>& dir_ptr,
                                              const std::vector<std::string>& names) {
  const SetDir& dir = *dir_ptr;
  std::vector<ResumePointer> out;
  // Inside targets keep their name relative to `dir`; outside ones only their text.
  auto aim = [&](ResumePointer& p, const std::string& relative) {
    p.target = p.outside ? p.text : dir.Join(relative);
    if (!p.outside) p.dir = dir_ptr, p.relative = relative;
  };
  for (const char* name :
       {"latest", "latest_checkpointed_iteration.txt", "checkpoint", "last.ckpt", "LATEST"}) {
    if (!Listed(names, name)) continue;
    const MemberStat st = dir.Stat(name);
    ResumePointer p;
    p.path = dir.Join(name);
    if (st.kind == EntryKind::kSymlink) {
      p.kind = "symlink";
      std::string text;
      const LinkTarget where = ResolveLink(dir.fd(), name, &text);
      p.text = text.substr(0, 4096);
      p.outside = where == LinkTarget::kOutside;
      aim(p, text);
      out.push_back(p);
      continue;
    }
    // last.ckpt as a regular file is a checkpoint itself (Lightning's default save_last copy).
    if (st.kind != EntryKind::kRegular || std::string(name) == "last.ckpt") continue;
    std::string text, err;
    if (!dir.ReadSmall(name, kMaxPointerBytes, &text, &err)) continue;
    const std::string n = name;
    if (n == "latest" || n == "LATEST") {
      p.kind = "deepspeed_latest";
      p.text = TrimBlanks(text).substr(0, 4096);
      p.outside = !IsOneComponent(p.text);
      aim(p, p.text);
    } else if (n == "latest_checkpointed_iteration.txt") {
      p.kind = "megatron_tracker";
      p.text = TrimBlanks(text).substr(0, 64);
      if (p.text == "release") {
        aim(p, "release");
      } else if (StepFromName("iter_" + p.text, "iter_") >= 0) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "iter_%07lld",
                      static_cast<long long>(StepFromName("iter_" + p.text, "iter_")));
        aim(p, buf);
      } else {
        continue;  // not Megatron's tracker
      }
    } else {
      p.kind = "tf_checkpoint_state";
      p.text = TfCheckpointStatePath(text).substr(0, 4096);
      if (p.text.empty()) continue;
      std::string relative = p.text;
      const std::string own = dir.path() + "/";  // an absolute path into this very directory
      if (relative.rfind(own, 0) == 0 && IsOneComponent(relative.substr(own.size())))
        relative = relative.substr(own.size());
      p.outside = relative[0] == '/' || relative == ".." || relative.rfind("../", 0) == 0 ||
                  relative.find("/../") != std::string::npos;
      aim(p, relative);
    }
    out.push_back(p);
  }
  return out;
}

}  // namespace ckptwatch
