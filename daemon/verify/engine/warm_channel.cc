#include "verify/engine/warm_channel.h"

#include <cstdio>
#include <cstring>

#include "verify/engine/packet_socket.h"

namespace ckptwatch {
namespace {

constexpr std::uint32_t kJobMagic = 0x6a6f6231;  // "job1"

struct JobHeader {
  std::uint32_t magic;
  std::uint32_t output;  // WarmOutput
  std::uint64_t job;
};

struct WarmReportWire {
  std::uint64_t job;
  std::int32_t pid;
  std::uint32_t retiring;
  std::uint32_t uid_count;
  std::uint32_t uids[kWarmReportUids];
  std::uint32_t reserved;
};

}  // namespace

std::vector<std::string> WarmVerifierArgs(double timeout_seconds, std::uint64_t memory_bytes,
                                          std::size_t max_files) {
  char timeout[32];
  std::snprintf(timeout, sizeof timeout, "%g", timeout_seconds);
  return {"--timeout", timeout, "--memory-bytes", std::to_string(memory_bytes), "--max-files",
          std::to_string(max_files)};
}

bool SendWarmJob(int channel, std::uint64_t job, const std::vector<std::string>& child_args,
                 int file_fd, int out_fd, int err_fd, WarmOutput output, std::string* err) {
  JobHeader header{kJobMagic, static_cast<std::uint32_t>(output), job};
  const std::string_view bytes(reinterpret_cast<const char*>(&header), sizeof header);
  if (output == WarmOutput::kKept) return SendWithFds(channel, bytes, child_args, {file_fd}, err);
  return SendWithFds(channel, bytes, child_args, {file_fd, out_fd, err_fd}, err);
}

bool ParseWarmJob(const std::vector<char>& datagram, std::uint64_t* job,
                  std::vector<std::string>* args, WarmOutput* output) {
  JobHeader header{};
  if (datagram.size() < sizeof header) return false;
  std::memcpy(&header, datagram.data(), sizeof header);
  if (header.magic != kJobMagic) return false;
  if (header.output > static_cast<std::uint32_t>(WarmOutput::kKept)) return false;
  *output = static_cast<WarmOutput>(header.output);
  *job = header.job;
  *args = SplitNulStrings(datagram.data() + sizeof header, datagram.size() - sizeof header);
  return true;
}

bool SendWarmReport(int channel, const WarmReport& report) {
  WarmReportWire wire{};
  wire.job = report.job;
  wire.pid = static_cast<std::int32_t>(report.pid);
  wire.retiring = report.retiring ? 1 : 0;
  wire.uid_count = report.uid_count;
  for (std::size_t i = 0; i < report.uids.size() && i < kWarmReportUids; ++i)
    wire.uids[i] = report.uids[i];
  return SendRecord(channel, wire);
}

int ReadWarmReport(int channel, WarmReport* report) {
  WarmReportWire wire{};
  if (const int rc = ReceiveRecord(channel, &wire); rc != 1) return rc;
  report->job = wire.job;
  report->pid = static_cast<pid_t>(wire.pid);
  report->retiring = wire.retiring != 0;
  report->uid_count = wire.uid_count;
  report->uids.clear();
  for (std::uint32_t i = 0; i < wire.uid_count && i < kWarmReportUids; ++i)
    report->uids.push_back(static_cast<uid_t>(wire.uids[i]));
  return 1;
}

}  // namespace ckptwatch
