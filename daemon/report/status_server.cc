#include "report/status_server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ckptwatch {
namespace {

// More clients at once than this are turned away; each is answered in
// microseconds, so only a flood gets here.
constexpr int kMaxConnections = 16;
// A client that does not read its answer is dropped after this long.
constexpr std::uint64_t kConnectionTimeoutMs = 5000;

// True when a daemon answers at `path` now.
bool SomeoneListens(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return live;
}

}  // namespace

std::string StatusSocketPath(const StatusConfig& status) {
  if (!status.socket.empty()) return status.socket;
  const char* dirs = std::getenv("RUNTIME_DIRECTORY");
  if (dirs && dirs[0] == '/') {
    std::string first(dirs);
    return first.substr(0, first.find(':')) + "/status.sock";
  }
  return "/run/ckptwatch/status.sock";
}

struct StatusServer::Connection {
  uv_pipe_t pipe;
  uv_timer_t timer;
  uv_write_t write;
  std::string body;
  StatusServer* server = nullptr;
  int open_handles = 2;
};

StatusServer::StatusServer(uv_loop_t* loop, std::string path, Render render)
    : loop_(loop), path_(std::move(path)), render_(std::move(render)) {}

StatusServer::~StatusServer() { Close(); }

std::unique_ptr<StatusServer> StatusServer::Start(uv_loop_t* loop, const std::string& path, Render render,
                                                  std::string* err) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    *err = "status socket path is too long for a unix socket: " + path;
    return nullptr;
  }
  const std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty() && mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    const int e = errno;
    *err = "cannot create " + dir + ": " + std::strerror(e);
    errno = e;
    return nullptr;
  }
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *err = path + " exists and is not a socket: not replaced";
      return nullptr;
    }
    if (SomeoneListens(path)) {
      *err = "another ckptwatch answers at " + path + " (set status.socket to run a second one)";
      return nullptr;
    }
    unlink(path.c_str());  // left behind by a daemon that died
  }
  std::unique_ptr<StatusServer> server(new StatusServer(loop, path, std::move(render)));
  server->listener_ = new uv_pipe_t;
  uv_pipe_init(loop, server->listener_, 0);
  server->listener_->data = server.get();
  // Created 0660 (umask 0117 for the bind), then given the group that reads the log.
  const mode_t old_mask = umask(0117);
  int rc = uv_pipe_bind(server->listener_, path.c_str());
  umask(old_mask);
  if (rc == 0) {
    server->bound_ = true;
    if (const struct group* adm = getgrnam("adm")) {
      // lchown: a socket swapped for a symlink after the bind is not followed.
      if (lchown(path.c_str(), static_cast<uid_t>(-1), adm->gr_gid) != 0) {
        // Not a member of adm: the daemon's own group keeps it.
      }
    }
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(server->listener_), kMaxConnections,
                   [](uv_stream_t* listener, int status) {
                     if (status == 0) static_cast<StatusServer*>(listener->data)->OnConnection();
                   });
  }
  if (rc != 0) {
    *err = "cannot listen at " + path + ": " + uv_strerror(rc);
    errno = -rc;
    return nullptr;  // the destructor closes the handle (and removes the file if it was bound)
  }
  return server;
}

void StatusServer::OnConnection() {
  auto* c = new Connection;
  c->server = this;
  uv_pipe_init(loop_, &c->pipe, 0);
  uv_timer_init(loop_, &c->timer);
  c->pipe.data = c->timer.data = c->write.data = c;
  auto close_connection = [](Connection* conn) {
    auto closed = [](uv_handle_t* handle) {
      auto* done = static_cast<Connection*>(handle->data);
      if (--done->open_handles == 0) delete done;
    };
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&conn->pipe))) {
      if (conn->server) --conn->server->open_connections_;
      uv_close(reinterpret_cast<uv_handle_t*>(&conn->pipe), closed);
      uv_close(reinterpret_cast<uv_handle_t*>(&conn->timer), closed);
    }
  };
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_), reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0 ||
      open_connections_ >= kMaxConnections) {
    ++open_connections_;
    close_connection(c);
    return;
  }
  ++open_connections_;
  c->body = render_();
  uv_buf_t buf = uv_buf_init(c->body.data(), static_cast<unsigned>(c->body.size()));
  static void (*const finish)(Connection*) = close_connection;
  uv_timer_start(
      &c->timer, [](uv_timer_t* timer) { finish(static_cast<Connection*>(timer->data)); },
      kConnectionTimeoutMs, 0);
  if (uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->pipe), &buf, 1,
               [](uv_write_t* req, int) { finish(static_cast<Connection*>(req->data)); }) != 0)
    finish(c);
}

void StatusServer::Close() {
  if (closed_) return;
  closed_ = true;
  if (listener_) {
    uv_close(reinterpret_cast<uv_handle_t*>(listener_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_pipe_t*>(handle); });
    listener_ = nullptr;
    if (bound_) unlink(path_.c_str());
  }
}

}  // namespace ckptwatch
