// The Env of a running daemon: the real clocks, watch roots held as directory
// descriptors (watch_root.h), names opened beneath them (open_beneath.h).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "base/unique_fd.h"
#include "decide/env.h"
#include "watch/open_writers.h"

namespace ckptwatch {

class RealEnv : public Env {
 public:
  Clock::time_point Now() const override;
  double UnixNow() const override;
  std::int64_t RealtimeNs() const override;
  bool OpenRoot(const std::string& watch, const std::string& path, std::string* err, int* error) override;
  void CloseRoot(const std::string& watch) override;
  bool RootDeleted(const std::string& watch) const override;
  EntryInfo Probe(const std::string& watch, const std::string& relative) const override;
  LinkTarget ResolveSymlink(const std::string& watch, const std::string& relative,
                            std::string* text) const override;
  OpenWriters WritersOf(const std::string& watch, const std::string& relative, Clock::time_point since,
                        std::string* who) const override;
  bool IsTrustedDirectory(const std::string& path) const override;
  bool IsNetworkFilesystem(const std::string& path, std::string* fs_name) const override;
  bool StatSpace(const std::string& path, FsSpace* out) const override;
  bool SpaceForFile(const std::string& watch, const std::string& relative, FsSpace* out) const override;
  std::string WhyCannotRead(const std::string& path, const Principal& reader) const override;
  std::string WhyCannotCreateIn(const std::string& dir, const Principal& writer) const override;

  /// The root descriptor of `watch`, shared with scans and verifications
  /// that outlive a CloseRoot(); null when the watch has none.
  std::shared_ptr<UniqueFd> Root(const std::string& watch) const;

 private:
  std::map<std::string, std::shared_ptr<UniqueFd>> roots_;
  mutable OpenWriterIndex writers_;
};

}  // namespace ckptwatch
