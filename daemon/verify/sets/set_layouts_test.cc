// Layout rules on directories built here: rank grids of DeepSpeed and Megatron, HF indexes that
// point outside, members that are symlinks (never followed out of the set), resume pointers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "verify/sets/resume_pointer.h"
#include "verify/sets/set_finder.h"

namespace ckptwatch {
namespace {

namespace fs = std::filesystem;

class SetLayouts : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ckptwatch-sets-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text = "x") {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel) << text;
  }
  std::vector<SetReport> Sets(const std::string& rel = "") {
    std::string err;
    FoundSets found =
        FindSets(rel.empty() ? root_ : root_ + "/" + rel, false, SetCheckOptions{}, &err);
    std::vector<SetReport> out;
    for (const SetCandidate& s : found.sets) out.push_back(s.Check());
    return out;
  }
  std::string root_;
};

TEST_F(SetLayouts, DeepSpeedRankGapsAreMissingMembers) {
  Write("global_step7/mp_rank_00_model_states.pt");
  Write("global_step7/mp_rank_02_model_states.pt");
  Write("global_step7/zero_pp_rank_0_mp_rank_00_optim_states.pt");
  Write("global_step7/zero_pp_rank_1_mp_rank_00_optim_states.pt");
  Write("global_step7/zero_pp_rank_0_mp_rank_02_optim_states.pt");
  auto sets = Sets("global_step7");
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].layout, "deepspeed");
  EXPECT_EQ(sets[0].step, 7);
  EXPECT_EQ(sets[0].verdict, SetVerdict::kIncomplete);
  EXPECT_EQ(sets[0].missing,
            (std::vector<std::string>{"mp_rank_01_model_states.pt",
                                      "zero_pp_rank_0_mp_rank_01_optim_states.pt",
                                      "zero_pp_rank_1_mp_rank_01_optim_states.pt",
                                      "zero_pp_rank_1_mp_rank_02_optim_states.pt"}));
}

TEST_F(SetLayouts, MegatronGridWithPipelineRanks) {
  for (const char* d : {"mp_rank_00_000", "mp_rank_01_000", "mp_rank_00_001"})
    Write(std::string("iter_0000050/") + d + "/model_optim_rng.pt");
  auto sets = Sets("iter_0000050");
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].layout, "megatron");
  EXPECT_EQ(sets[0].step, 50);
  EXPECT_EQ(sets[0].missing, std::vector<std::string>{"mp_rank_01_001/model_optim_rng.pt"});
}

TEST_F(SetLayouts, TrainerCheckpointWithoutItsStateIsIncomplete) {
  Write("checkpoint-3/model.safetensors");
  Write("checkpoint-3/trainer_state.json", R"({"global_step": 4})");
  auto sets = Sets("checkpoint-3");
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].verdict, SetVerdict::kInconsistent);  // says step 4 in checkpoint-3
  fs::remove(root_ + "/checkpoint-3/trainer_state.json");
  sets = Sets("checkpoint-3");
  EXPECT_EQ(sets[0].verdict, SetVerdict::kIncomplete);
  EXPECT_EQ(sets[0].missing, std::vector<std::string>{"trainer_state.json"});
}

TEST_F(SetLayouts, SymlinkedMembersAreNotFollowed) {
  Write("outside/secret.safetensors", "secret");
  Write("set/model.safetensors.index.json",
        R"({"weight_map": {"w": "model-00001-of-00001.safetensors"}})");
  fs::create_symlink(root_ + "/outside/secret.safetensors",
                     root_ + "/set/model-00001-of-00001.safetensors");
  auto sets = Sets("set");
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].verdict, SetVerdict::kInconsistent);
  EXPECT_NE(sets[0].reason.find("symlink"), std::string::npos) << sets[0].reason;
  // A DCP .metadata that names a file elsewhere is refused by name, before any open.
  Write("dcp/__0_0.distcp");
  fs::create_symlink(root_ + "/outside/secret.safetensors", root_ + "/dcp/.metadata");
  sets = Sets("dcp");
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_NE(sets[0].reason.find("symlink"), std::string::npos) << sets[0].reason;
}

TEST_F(SetLayouts, HostileIndexesAreJudgedNotTrusted) {
  Write("a/model.safetensors.index.json", "{\"weight_map\": {\"w\": \"/etc/passwd\"}}");
  Write("b/model.safetensors.index.json", "[1, 2");
  Write("c/model.safetensors.index.json", "{\"weight_map\": {\"w\": 7}}");
  for (const char* d : {"a", "b", "c"}) {
    auto sets = Sets(d);
    ASSERT_EQ(sets.size(), 1u) << d;
    EXPECT_EQ(sets[0].verdict, SetVerdict::kInconsistent) << d;
  }
}

TEST_F(SetLayouts, PointersAreReadAndNeverFollowedOut) {
  Write("run/latest", "global_step9\n");
  Write("run/checkpoint",
        "model_checkpoint_path: \"model.ckpt-9\"\nall_model_checkpoint_paths: \"model.ckpt-9\"\n");
  fs::create_symlink("/etc", root_ + "/run/LATEST");
  std::string err;
  FoundSets found = FindSets(root_ + "/run", false, SetCheckOptions{}, &err);
  ASSERT_EQ(found.pointers.size(), 3u);
  std::map<std::string, ResumePointer> by_kind;
  for (const ResumePointer& p : found.pointers) by_kind[p.kind] = p;
  EXPECT_EQ(by_kind["deepspeed_latest"].target, root_ + "/run/global_step9");
  EXPECT_EQ(by_kind["tf_checkpoint_state"].target, root_ + "/run/model.ckpt-9");
  EXPECT_TRUE(by_kind["symlink"].outside);
  for (const PointerReport& r : JudgePointers(found)) {
    EXPECT_NE(r.verdict, "ok") << r.path;
    EXPECT_NE(r.reason.find("resume will fail"), std::string::npos) << r.reason;
  }
  EXPECT_EQ(TfCheckpointStatePath(
                "all_model_checkpoint_paths: \"a\"\nmodel_checkpoint_path: \"b\\\"c\"\n"),
            "b\"c");
}

TEST_F(SetLayouts, PointerTargetsOutsideTheScannedDepthAreRecognisedOnDemand) {
  Write("run/global_step3/mp_rank_00_model_states.pt");
  Write("run/global_step3/zero_pp_rank_1_mp_rank_00_optim_states.pt");
  Write("run/latest", "global_step3");
  std::string err;
  FoundSets found = FindSets(root_ + "/run/latest", false, SetCheckOptions{},
                             &err);  // the pointer's own directory only
  EXPECT_TRUE(found.sets.empty());
  auto reports = JudgePointers(found);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].verdict, "incomplete") << reports[0].reason;  // ZeRO rank 0 is missing
  EXPECT_NE(reports[0].reason.find("zero_pp_rank_0_mp_rank_00_optim_states.pt"), std::string::npos)
      << reports[0].reason;
}

// A second user who can write the watched directory swaps pointers and their targets for
// symlinks to a path only root can read: what ckptwatch says is the same whether that path
// exists, holds a set or not (nothing is followed, nothing outside is even stat'ed).
TEST_F(SetLayouts, PointersSwappedForSymlinksDiscloseNothingOfTheirTarget) {
  const std::string secret = root_ + "/private";  // stands for a root-only directory
  auto plant = [&] {
    Write("private/gs/mp_rank_00_model_states.pt");
    Write("private/gs/zero_pp_rank_1_mp_rank_00_optim_states.pt");  // rank 0 "missing"
    Write("private/model.ckpt-9.index", "secret index");
    fs::permissions(secret, fs::perms::owner_all, fs::perm_options::replace);
  };
  Write("ds/latest", "global_step9\n");  // names a tag that is a link to the private set
  fs::create_directory_symlink(secret + "/gs", root_ + "/ds/global_step9");
  Write("tf/checkpoint", "model_checkpoint_path: \"model.ckpt-9\"\n");
  fs::create_symlink(secret + "/model.ckpt-9.index", root_ + "/tf/model.ckpt-9.index");
  Write("tf_abs/checkpoint", "model_checkpoint_path: \"" + secret + "/model.ckpt-9\"\n");
  fs::create_directories(root_ + "/lightning");
  fs::create_symlink(secret + "/gs", root_ + "/lightning/last.ckpt");
  fs::create_symlink("../private/gs", root_ + "/lightning/LATEST");
  auto judged = [&] {
    std::string text, err;
    for (const char* d : {"ds", "tf", "tf_abs", "lightning"}) {
      FoundSets found = FindSets(root_ + "/" + d, false, SetCheckOptions{}, &err);
      for (const SetCandidate& set : found.sets)
        text += set.path() + " " + SetVerdictName(set.Check().verdict) + "\n";
      for (const PointerReport& r : JudgePointers(found))
        text += r.path + " " + r.verdict + " " + r.reason + " [" + r.last_complete + "]\n";
    }
    return text;
  };
  const std::string absent = judged();
  plant();
  const std::string present = judged();
  EXPECT_EQ(present, absent);
  EXPECT_EQ(present.find("mp_rank"), std::string::npos) << present;
  EXPECT_NE(present.find("ds/latest unrecognized latest names global_step9, which is a symlink "
                         "(not followed)"),
            std::string::npos)
      << present;
  EXPECT_NE(present.find("tf/checkpoint unrecognized checkpoint names model.ckpt-9, which is no "
                         "checkpoint set"),
            std::string::npos)
      << present;
  EXPECT_NE(present.find("outside the checkpoint directory, not followed"), std::string::npos)
      << present;
  EXPECT_EQ(present.find(" ok "), std::string::npos) << present;
}

TEST_F(SetLayouts, AnAbsoluteTfStatePathIntoItsOwnDirectoryIsTheNameBesideIt) {
  Write("run/checkpoint", "model_checkpoint_path: \"" + root_ + "/run/model.ckpt-9\"\n");
  std::string err;
  FoundSets found = FindSets(root_ + "/run", false, SetCheckOptions{}, &err);
  ASSERT_EQ(found.pointers.size(), 1u);
  EXPECT_FALSE(found.pointers[0].outside);
  EXPECT_EQ(found.pointers[0].relative, "model.ckpt-9");
  auto reports = JudgePointers(found);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].verdict, "missing") << reports[0].reason;
}

TEST_F(SetLayouts, TheDaemonFindsSetsBeneathItsRootNeverThroughALink) {
  Write("real/global_step3/mp_rank_00_model_states.pt");
  fs::create_directory_symlink(root_ + "/real/global_step3", root_ + "/global_step3");
  std::string err;
  UniqueFd root(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(root.valid());
  EXPECT_TRUE(FindSetsBeneath(root.get(), root_, "global_step3", {}, &err).sets.empty());
  const FoundSets found = FindSetsBeneath(root.get(), root_, "real/global_step3", {}, &err);
  ASSERT_EQ(found.sets.size(), 1u) << err;
  EXPECT_EQ(found.sets[0].path(), root_ + "/real/global_step3");
}

}  // namespace
}  // namespace ckptwatch
