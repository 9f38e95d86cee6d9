#include "verify/sets/tf_saved_model.h"

#include <algorithm>

#include "verify/byte_reader.h"
#include "verify/sets/tf_bundle.h"
#include "verify/sets/tf_table.h"

namespace ckptwatch {

bool LooksLikeSavedModel(const SetDir& dir, const std::vector<std::string>& names) {
  if (Listed(names, "saved_model.pb") || Listed(names, "saved_model.pbtxt")) return true;
  if (!Listed(names, "variables") || !dir.Stat("variables").is_dir) return false;
  for (const std::string& name : dir.List("variables", 1000))
    if (name == "variables.index" || name.rfind("variables.data-", 0) == 0) return true;
  return false;
}

SetReport CheckSavedModel(const SetDir& dir, const std::vector<std::string>& names,
                          const SetCheckOptions& options) {
  SetReport r;
  r.layout = "tf_saved_model";
  r.path = dir.path();
  r.dir = dir.path();
  const std::string pb = Listed(names, "saved_model.pb")      ? "saved_model.pb"
                         : Listed(names, "saved_model.pbtxt") ? "saved_model.pbtxt"
                                                           : "";
  if (pb.empty()) {
    r.Missing("saved_model.pb",
              "saved_model.pb is missing: the SavedModel's commit point, written after variables/");
  } else {
    const MemberStat st = dir.Stat(pb);
    if (st.kind != EntryKind::kRegular)
      r.Fail(SetVerdict::kInconsistent, pb + " is not a regular file", pb);
    else if (st.size == 0)
      r.Fail(SetVerdict::kIncomplete, pb + " is empty", pb);
    r.members.push_back(pb);
  }
  if (Listed(names, "fingerprint.pb")) r.members.push_back("fingerprint.pb");
  if (Listed(names, "variables") && dir.Stat("variables").is_dir) {
    const std::vector<std::string> vars = dir.List("variables", 100000);
    bool any = false;
    for (const std::string& v : vars)
      any = any || v == "variables.index" || v.rfind("variables.data-", 0) == 0;
    if (any) {
      CheckTfBundle(dir, "variables/variables", options, &r);
    }
  }
  return r;
}

std::vector<SetReport> FindTfV1Checkpoints(const SetDir& dir,
                                           const std::vector<std::string>& names) {
  std::vector<SetReport> out;
  for (const std::string& name : names) {
    if (name.size() <= 5 || name.compare(name.size() - 5, 5, ".meta") != 0) continue;
    const std::string prefix = name.substr(0, name.size() - 5);
    if (!Listed(names, prefix) || Listed(names, prefix + ".index")) continue;
    OpenedEntry f = dir.Open(prefix);
    if (f.kind != EntryKind::kRegular) continue;
    ReadAt read_at = FdReadAt(f.fd.get());
    const auto size = static_cast<std::uint64_t>(f.st.st_size);
    if (!HasTableMagic(read_at, size)) continue;
    SetReport r;
    r.layout = "tf_v1_checkpoint";
    r.path = dir.Join(prefix);
    r.dir = dir.path();
    r.members = {prefix, name};
    std::vector<TableEntry> table;
    std::string err;
    if (!ReadTable(read_at, size, &table, &err)) {
      const bool short_file = err.find("past the end") != std::string::npos;
      r.Fail(short_file ? SetVerdict::kIncomplete : SetVerdict::kInconsistent, prefix + ": " + err,
             prefix);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ckptwatch
