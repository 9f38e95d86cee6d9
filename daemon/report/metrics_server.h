// A small HTTP/1.1 server for /metrics on a libuv loop in its own thread. One thread
// serves every connection, so idle or slow clients cannot starve a scrape: each connection
// has a deadline to send its request head, the connection count is bounded, and at the
// bound the oldest connection that has not sent a complete request is dropped.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct sockaddr_storage;

namespace ckptwatch {

/// What the server tolerates from one client (docs/metrics.md, "Limits").
struct MetricsServerLimits {
  std::chrono::milliseconds request_timeout{3000};    ///< To send a complete request head.
  std::chrono::milliseconds response_timeout{10000};  ///< To take the whole response.
  std::size_t max_connections = 64;
  std::size_t max_request_head_bytes = 8192;
};

/// The parts of a request head the server acts on.
struct HttpRequestHead {
  std::string method;
  std::string path;           ///< The target without its query string.
  std::string authorization;  ///< The Authorization header's value; empty if absent.
};

/// Parses a complete head ("…\r\n\r\n"); nullopt when it is not HTTP/1.x.
std::optional<HttpRequestHead> ParseRequestHead(std::string_view head);

/// The whole response to `request`: 200 for GET/HEAD /metrics with `body()` (HEAD: headers
/// only), 401 when `user` is set and the basic credentials differ, 404 for other paths,
/// 405 for other methods. `body` is called only when the response carries it.
std::string HttpResponse(const HttpRequestHead& request, const std::string& user,
                         const std::string& password, const std::function<std::string()>& body);

/// The address Start() binds for `host` (an IP address or name) and `port`, into `*address`
/// when not null; false with `*err` when `host` does not resolve.
bool ResolveListenHost(const std::string& host, int port, sockaddr_storage* address,
                       std::string* err);

class MetricsServer {
 public:
  /// Listens on `host` (an IP address or name) and `port` (0: any) and serves until destroyed.
  /// `body` runs on the server's thread. `user` empty: no basic auth. nullptr with `*err`
  /// set when the address cannot be bound.
  static std::unique_ptr<MetricsServer> Start(const std::string& host, int port,
                                              const MetricsServerLimits& limits,
                                              std::function<std::string()> body, std::string user,
                                              std::string password, std::string* err);
  /// Closes every connection and joins the thread.
  ~MetricsServer();

  /// The port actually bound.
  int port() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ckptwatch
