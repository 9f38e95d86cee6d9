#include "report/metrics_server.h"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <uv.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <list>
#include <thread>

namespace ckptwatch {
namespace {

std::string_view TrimHttpSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool DecodeBase64(std::string_view in, std::string* out) {
  int bits = 0, value = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      return false;
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out += static_cast<char>((value >> bits) & 0xff);
    }
  }
  return true;
}

// Takes as long whatever the first differing byte, so a guess learns nothing from timing.
bool SameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool Authorized(std::string_view authorization, const std::string& user,
                const std::string& password) {
  if (user.empty()) return true;
  authorization = TrimHttpSpace(authorization);
  if (authorization.size() < 6 || !EqualsIgnoreCase(authorization.substr(0, 6), "basic "))
    return false;
  std::string credentials;
  if (!DecodeBase64(TrimHttpSpace(authorization.substr(6)), &credentials)) return false;
  const std::size_t colon = credentials.find(':');
  if (colon == std::string::npos) return false;
  const bool user_ok = SameSecret(std::string_view(credentials).substr(0, colon), user);
  const bool password_ok = SameSecret(std::string_view(credentials).substr(colon + 1), password);
  return user_ok && password_ok;
}

std::string Response(std::string_view status, std::string_view headers, std::string_view body,
                     std::size_t content_length) {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Length: " + std::to_string(content_length);
  out += "\r\nConnection: close\r\n";
  out += headers;
  out += "\r\n";
  out += body;
  return out;
}

std::string PlainResponse(std::string_view status, std::string_view headers) {
  const std::string body = std::string(status) + "\n";
  return Response(status, std::string(headers) + "Content-Type: text/plain; charset=utf-8\r\n",
                  body, body.size());
}

// Where the head ends (past its blank line), or npos.
std::size_t HeadEnd(std::string_view data) {
  const std::size_t crlf = data.find("\r\n\r\n");
  const std::size_t lf = data.find("\n\n");
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::string_view::npos;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf < lf))
    return crlf + 4;
  return lf + 2;
}

}  // namespace

std::optional<HttpRequestHead> ParseRequestHead(std::string_view head) {
  std::size_t eol = head.find('\n');
  if (eol == std::string_view::npos) return std::nullopt;
  const std::string_view line = TrimHttpSpace(head.substr(0, eol));
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2) return std::nullopt;
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return std::nullopt;
  HttpRequestHead request;
  request.method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty() || target.find(' ') != std::string_view::npos) return std::nullopt;
  request.path = target.substr(0, target.find('?'));
  for (std::size_t pos = eol + 1; pos < head.size();) {
    eol = head.find('\n', pos);
    if (eol == std::string_view::npos) eol = head.size();
    const std::string_view header = head.substr(pos, eol - pos);
    pos = eol + 1;
    const std::size_t colon = header.find(':');
    if (colon != std::string_view::npos &&
        EqualsIgnoreCase(header.substr(0, colon), "authorization"))
      request.authorization = TrimHttpSpace(header.substr(colon + 1));
  }
  return request;
}

std::string HttpResponse(const HttpRequestHead& request, const std::string& user,
                         const std::string& password, const std::function<std::string()>& body) {
  const bool get = request.method == "GET", head = request.method == "HEAD";
  if (!get && !head) return PlainResponse("405 Method Not Allowed", "Allow: GET, HEAD\r\n");
  if (!Authorized(request.authorization, user, password))
    return PlainResponse("401 Unauthorized", "WWW-Authenticate: Basic realm=\"ckptwatch\"\r\n");
  if (request.path != "/metrics") return PlainResponse("404 Not Found", "");
  const std::string text = body();
  return Response("200 OK", "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n",
                  head ? std::string_view() : std::string_view(text), text.size());
}

namespace {

struct Connection {
  uv_tcp_t tcp;
  uv_timer_t deadline;
  uv_write_t write;
  uv_shutdown_t shutdown;
  std::list<Connection*>::iterator position;
  std::string received;
  std::string response;
  bool responding = false;
  bool closing = false;
  int open_handles = 2;
  char buffer[2048];
};

}  // namespace

struct MetricsServer::Impl {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t stop;
  bool loop_open = false, listener_open = false, stop_open = false;
  std::thread thread;
  MetricsServerLimits limits;
  std::function<std::string()> body;
  std::string user, password;
  std::list<Connection*> connections;  // oldest first
  int port = 0;

  ~Impl();
  void Close(Connection* c);
  void Accept();
  void Received(Connection* c, std::string_view data);
  void Respond(Connection* c, std::string response);
};

void MetricsServer::Impl::Close(Connection* c) {
  if (c->closing) return;
  c->closing = true;
  connections.erase(c->position);
  auto closed = [](uv_handle_t* handle) {
    auto* conn = static_cast<Connection*>(handle->data);
    if (--conn->open_handles == 0) delete conn;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->deadline), closed);
}

void MetricsServer::Impl::Accept() {
  auto* c = new Connection;
  uv_tcp_init(&loop, &c->tcp);
  uv_timer_init(&loop, &c->deadline);
  c->tcp.data = c->deadline.data = c;
  c->position = connections.insert(connections.end(), c);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener),
                reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    Close(c);
    return;
  }
  if (connections.size() > limits.max_connections) {
    // At the bound, the oldest client that has not sent a complete request is the one most
    // likely to be holding a slot: a scraper sends its request as soon as it connects.
    auto idle = std::find_if(connections.begin(), connections.end(),
                             [](Connection* other) { return !other->responding; });
    Close(*idle);  // found: at worst the new connection itself
  }
  if (c->closing) return;
  uv_timer_start(
      &c->deadline,
      [](uv_timer_t* timer) {
        auto* conn = static_cast<Connection*>(timer->data);
        static_cast<Impl*>(timer->loop->data)->Close(conn);
      },
      static_cast<std::uint64_t>(limits.request_timeout.count()), 0);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
        auto* conn = static_cast<Connection*>(handle->data);
        *buf = uv_buf_init(conn->buffer, sizeof conn->buffer);
      },
      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* conn = static_cast<Connection*>(stream->data);
        auto* impl = static_cast<Impl*>(stream->loop->data);
        if (nread < 0) {
          impl->Close(conn);
        } else if (nread > 0) {
          impl->Received(conn, std::string_view(buf->base, static_cast<std::size_t>(nread)));
        }
      });
}

void MetricsServer::Impl::Received(Connection* c, std::string_view data) {
  c->received.append(data);
  const std::size_t end = HeadEnd(c->received);
  if (end == std::string::npos || end > limits.max_request_head_bytes) {
    if (c->received.size() > limits.max_request_head_bytes)
      Respond(c, PlainResponse("431 Request Header Fields Too Large", ""));
    return;
  }
  const std::optional<HttpRequestHead> request =
      ParseRequestHead(std::string_view(c->received).substr(0, end));
  Respond(c, request ? HttpResponse(*request, user, password, body)
                     : PlainResponse("400 Bad Request", ""));
}

void MetricsServer::Impl::Respond(Connection* c, std::string response) {
  // One request per connection: nothing more is read, and the peer sees the end of the
  // response as the end of the connection.
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  c->responding = true;
  c->response = std::move(response);
  uv_timer_stop(&c->deadline);
  uv_timer_start(
      &c->deadline,
      [](uv_timer_t* timer) {
        static_cast<Impl*>(timer->loop->data)->Close(static_cast<Connection*>(timer->data));
      },
      static_cast<std::uint64_t>(limits.response_timeout.count()), 0);
  uv_buf_t buf = uv_buf_init(c->response.data(), static_cast<unsigned>(c->response.size()));
  c->write.data = c;
  const int rc = uv_write(
      &c->write, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, [](uv_write_t* req, int status) {
        auto* conn = static_cast<Connection*>(req->data);
        auto* impl = static_cast<Impl*>(req->handle->loop->data);
        if (status < 0 || conn->closing) {
          impl->Close(conn);
          return;
        }
        conn->shutdown.data = conn;
        if (uv_shutdown(&conn->shutdown, req->handle, [](uv_shutdown_t* s, int) {
              auto* cc = static_cast<Connection*>(s->data);
              static_cast<Impl*>(s->handle->loop->data)->Close(cc);
            }) != 0)
          impl->Close(conn);
      });
  if (rc != 0) Close(c);
}

MetricsServer::Impl::~Impl() {
  if (thread.joinable()) {
    uv_async_send(&stop);
    thread.join();
  } else if (loop_open) {
    if (listener_open) uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
    if (stop_open) uv_close(reinterpret_cast<uv_handle_t*>(&stop), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (loop_open) uv_loop_close(&loop);
}

bool ResolveListenHost(const std::string& host, int port, sockaddr_storage* address,
                       std::string* err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* addresses = nullptr;
  const std::string service = std::to_string(port);
  if (int gai = getaddrinfo(host.c_str(), service.c_str(), &hints, &addresses); gai != 0) {
    *err = "cannot resolve " + host + ": " + gai_strerror(gai);
    return false;
  }
  if (address) std::memcpy(address, addresses->ai_addr, addresses->ai_addrlen);
  freeaddrinfo(addresses);
  return true;
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;

int MetricsServer::port() const { return impl_->port; }

std::unique_ptr<MetricsServer> MetricsServer::Start(const std::string& host, int port,
                                                    const MetricsServerLimits& limits,
                                                    std::function<std::string()> body,
                                                    std::string user, std::string password,
                                                    std::string* err) {
  auto impl = std::make_unique<Impl>();
  impl->limits = limits;
  impl->body = std::move(body);
  impl->user = std::move(user);
  impl->password = std::move(password);
  int rc = uv_loop_init(&impl->loop);
  if (rc != 0) {
    *err = std::string("uv_loop_init: ") + uv_strerror(rc);
    return nullptr;
  }
  impl->loop_open = true;
  impl->loop.data = impl.get();

  sockaddr_storage address{};
  if (!ResolveListenHost(host, port, &address, err)) return nullptr;
  uv_tcp_init(&impl->loop, &impl->listener);
  impl->listener_open = true;
  impl->listener.data = impl.get();
  rc = uv_tcp_bind(&impl->listener, reinterpret_cast<const sockaddr*>(&address), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&impl->listener), 128,
                   [](uv_stream_t* server, int status) {
                     if (status == 0) static_cast<Impl*>(server->loop->data)->Accept();
                   });
  }
  if (rc != 0) {
    *err = std::string(uv_err_name(rc)) + ": " + uv_strerror(rc);
    return nullptr;
  }
  sockaddr_storage bound{};
  int length = sizeof bound;
  uv_tcp_getsockname(&impl->listener, reinterpret_cast<sockaddr*>(&bound), &length);
  impl->port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  uv_async_init(&impl->loop, &impl->stop, [](uv_async_t* stop) {
    auto* impl = static_cast<Impl*>(stop->loop->data);
    uv_close(reinterpret_cast<uv_handle_t*>(&impl->listener), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&impl->stop), nullptr);
    while (!impl->connections.empty()) impl->Close(impl->connections.front());
  });
  impl->stop_open = true;
  impl->thread = std::thread([loop = &impl->loop] {
    // Signals are the daemon loop's business; a write to a reset connection must fail with
    // EPIPE here rather than kill the process with SIGPIPE.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    uv_run(loop, UV_RUN_DEFAULT);
  });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

}  // namespace ckptwatch
