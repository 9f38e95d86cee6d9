// The status socket: a unix stream socket on the daemon's loop that answers
// every connection with the status document (status_json.h) and closes it.
// It reads nothing from the client, so a client can only ask, not say.
// Who may ask is the socket's mode: 0660, group `adm` when the daemon may
// give it that group (the packaged unit runs with SupplementaryGroups=adm),
// like the log — docs/operations.md, "On call".
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "config/config.h"

namespace ckptwatch {

/// `status.socket`, else `$RUNTIME_DIRECTORY/status.sock` (systemd's
/// RuntimeDirectory=), else /run/ckptwatch/status.sock.
std::string StatusSocketPath(const StatusConfig& status);

class StatusServer {
 public:
  using Render = std::function<std::string()>;

  /// Listens at `path` (its directory is created, 0755, if missing; a stale
  /// socket left by a dead daemon is replaced; a live one, or anything that
  /// is not a socket, is not). nullptr with `*err` and errno when it cannot.
  static std::unique_ptr<StatusServer> Start(uv_loop_t* loop, const std::string& path, Render render,
                                             std::string* err);
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  /// Stops listening, closes open connections and removes the socket file.
  /// The handles close on the next loop iteration.
  void Close();
  const std::string& path() const { return path_; }

 private:
  struct Connection;
  StatusServer(uv_loop_t* loop, std::string path, Render render);
  void OnConnection();

  uv_loop_t* loop_;
  std::string path_;
  Render render_;
  uv_pipe_t* listener_ = nullptr;  // owned by the loop once closing
  int open_connections_ = 0;
  bool bound_ = false;  // the socket file is ours to remove
  bool closed_ = false;
};

}  // namespace ckptwatch
