#include "decide/path_record.h"

#include <gtest/gtest.h>

namespace ckptwatch {
namespace {

PathRecord::Remembered Verdict(std::int64_t mtime, std::string cause = "") {
  PathRecord::Remembered r;
  r.stat.mtime_ns = mtime;
  r.verdict = cause.empty() ? "ok" : "truncated";
  r.cause = std::move(cause);
  return r;
}

TEST(PathTable, ForgettingADirectoryForgetsWhatIsKnownBelowItAndNothingBeside) {
  PathTable table(100);
  table.Remember("/w/run", Verdict(1));
  table.Remember("/w/run/a.h5", Verdict(2, "disk_full"));
  table["/w/run/a.h5"].repeat = PathRecord::Repeat{"truncated/disk_full", 5, 2, {}};
  table["/w/run/sub/b.h5"].link_target = "/elsewhere";
  table.Remember("/w/run-2/c.h5", Verdict(3));  // a sibling whose name starts the same
  table.Forget("/w/run", /*keep_write_event=*/false);
  EXPECT_EQ(table.Find("/w/run"), nullptr);
  EXPECT_EQ(table.Find("/w/run/a.h5"), nullptr);
  EXPECT_EQ(table.Find("/w/run/sub/b.h5"), nullptr);
  ASSERT_NE(table.Find("/w/run-2/c.h5"), nullptr);
  EXPECT_EQ(table.remembered_count(), 1u);
}

TEST(PathTable, AWriteInFlightOutlivesItsForgottenName) {
  PathTable table(100);
  PathRecord& record = table["/w/a.h5"];
  record.dispatched = PathRecord::Dispatched{};
  record.last_event_ns = 7;
  record.close = PathRecord::Close{true, false, std::nullopt};
  table.Remember("/w/a.h5", Verdict(1));
  table.Forget("/w/a.h5", /*keep_write_event=*/true);
  const PathRecord* kept = table.Find("/w/a.h5");
  ASSERT_NE(kept, nullptr) << "its verdict still has to come";
  EXPECT_FALSE(kept->remembered);
  EXPECT_TRUE(kept->dispatched);
  EXPECT_EQ(kept->last_event_ns, 7);
  table.Forget("/w/a.h5", /*keep_write_event=*/false);
  EXPECT_FALSE(table.Find("/w/a.h5")->close);
  table.Find("/w/a.h5")->dispatched.reset();
  table.Tidy("/w/a.h5");
  EXPECT_EQ(table.Find("/w/a.h5"), nullptr) << "an empty record goes";
}

TEST(PathTable, RememberedVerdictsAreBoundedOldestFirstAndTheOrderIsCompacted) {
  PathTable table(3);
  for (int i = 0; i < 5; ++i) table.Remember("/w/" + std::to_string(i), Verdict(i));
  EXPECT_EQ(table.remembered_count(), 3u);
  EXPECT_EQ(table.Find("/w/0"), nullptr);
  EXPECT_EQ(table.Find("/w/1"), nullptr);
  ASSERT_NE(table.Find("/w/4"), nullptr);
  // Rewriting one file many times neither evicts the others nor grows without bound.
  for (int i = 0; i < 5000; ++i) table.Remember("/w/4", Verdict(i));
  EXPECT_EQ(table.remembered_count(), 3u);
  EXPECT_NE(table.Find("/w/2"), nullptr);
  EXPECT_NE(table.Find("/w/3"), nullptr);
}

TEST(PathTable, AScanReplacesWhatIsSeenAndKeepsTheRest) {
  PathTable table(100);
  table["/w/gone.h5"].seen = FileStat{1, 1, 1};
  table.Remember("/w/kept.h5", Verdict(1));
  table["/w/kept.h5"].seen = FileStat{1, 1, 2};
  Snapshot snapshot;
  snapshot.files["/w/new.h5"] = FileStat{2, 2, 3};
  table.SetSeen(snapshot);
  EXPECT_EQ(table.Find("/w/gone.h5"), nullptr);
  ASSERT_NE(table.Find("/w/kept.h5"), nullptr);
  EXPECT_FALSE(table.Find("/w/kept.h5")->seen);
  EXPECT_EQ(table.Find("/w/new.h5")->seen, (FileStat{2, 2, 3}));
}

}  // namespace
}  // namespace ckptwatch
