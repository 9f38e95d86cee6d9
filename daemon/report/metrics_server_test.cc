#include "report/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

namespace ckptwatch {
namespace {

using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

HttpRequestHead Get(std::string path, std::string authorization = "") {
  return {"GET", std::move(path), std::move(authorization)};
}

std::string Body() { return "ckptwatch_up 1\n"; }

TEST(HttpRequestHead, ParsesMethodPathAndAuthorization) {
  auto head = ParseRequestHead(
      "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nauthorization:  Basic cHJvbTpzM2NyZXQ=\r\n\r\n");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->method, "GET");
  EXPECT_EQ(head->path, "/metrics");
  EXPECT_EQ(head->authorization, "Basic cHJvbTpzM2NyZXQ=");
  EXPECT_FALSE(ParseRequestHead("GET /metrics\r\n\r\n"));
  EXPECT_FALSE(ParseRequestHead("\x16\x03\x01 TLS hello\r\n\r\n"));
}

TEST(HttpResponse, ServesMetricsOnGetAndHeadersOnlyOnHead) {
  const std::string get = HttpResponse(Get("/metrics"), "", "", Body);
  EXPECT_EQ(get.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << get;
  EXPECT_NE(get.find("Content-Length: 15\r\n"), std::string::npos);
  EXPECT_NE(get.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(get.substr(get.size() - 15), Body());
  const std::string head = HttpResponse({"HEAD", "/metrics", ""}, "", "", Body);
  EXPECT_NE(head.find("Content-Length: 15\r\n"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
}

TEST(HttpResponse, RefusesOtherPathsAndMethods) {
  EXPECT_EQ(HttpResponse(Get("/"), "", "", Body).rfind("HTTP/1.1 404", 0), 0u);
  const std::string post = HttpResponse({"POST", "/metrics", ""}, "", "", Body);
  EXPECT_EQ(post.rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos);
}

TEST(HttpResponse, ChecksBasicAuthBeforeAnythingElse) {
  auto status = [](const HttpRequestHead& r) {
    return HttpResponse(r, "prom", "s3cret", Body).substr(0, 12);
  };
  EXPECT_EQ(status(Get("/metrics")), "HTTP/1.1 401");
  EXPECT_EQ(status(Get("/nowhere")), "HTTP/1.1 401");
  EXPECT_EQ(status(Get("/metrics", "Basic cHJvbTpzM2NyZXQ=")), "HTTP/1.1 200");  // prom:s3cret
  EXPECT_EQ(status(Get("/metrics", "basic cHJvbTpzM2NyZXQ")), "HTTP/1.1 200");
  EXPECT_EQ(status(Get("/metrics", "Basic cHJvbTpzM2NyZXU=")), "HTTP/1.1 401");  // prom:s3creu
  EXPECT_EQ(status(Get("/metrics", "Basic cHJvbQ==")), "HTTP/1.1 401");          // prom
  EXPECT_NE(HttpResponse(Get("/metrics"), "prom", "x", Body)
                .find("WWW-Authenticate: Basic realm=\"ckptwatch\"\r\n"),
            std::string::npos);
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void Start(MetricsServerLimits limits) {
    std::string err;
    server_ = MetricsServer::Start("127.0.0.1", 0, limits, Body, "", "", &err);
    ASSERT_TRUE(server_) << err;
  }

  int Connect() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(server_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  }

  // Everything the server sends on `fd` until it closes, or until `timeout`.
  static std::string ReadAll(int fd, std::chrono::milliseconds timeout) {
    std::string out;
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return out;
      char buf[4096];
      const ssize_t n = read(fd, buf, sizeof buf);
      // A server that closes with a byte of ours unread makes the kernel send a reset
      // (RFC 1122 4.2.2.13): that is a hang-up as much as an end of file.
      if (n < 0 && errno == ECONNRESET) return out + "<closed>";
      if (n <= 0) return out + (n == 0 ? "<closed>" : "<error>");
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

  std::string Scrape(std::chrono::milliseconds timeout) {
    const int fd = Connect();
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string response = ReadAll(fd, timeout);
    close(fd);
    return response;
  }

  std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServerTest, ScrapesWhileAHundredIdleConnectionsAreHeldOpen) {
  Start(MetricsServerLimits{});
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) idle.push_back(Connect());
  std::this_thread::sleep_for(50ms);  // let the server accept them all
  const auto start = SteadyClock::now();
  const std::string response = Scrape(2000ms);
  EXPECT_LT(SteadyClock::now() - start, 2s);
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK", 0), 0u) << response;
  EXPECT_NE(response.find("ckptwatch_up 1\n<closed>"), std::string::npos) << response;
  for (int fd : idle) close(fd);
}

TEST_F(MetricsServerTest, ClosesAConnectionThatDribblesItsRequest) {
  MetricsServerLimits limits;
  limits.request_timeout = 300ms;
  Start(limits);
  const int slow = Connect();
  const auto start = SteadyClock::now();
  std::string closed;
  // One byte every 50 ms: always active, never complete.
  for (const char c : std::string("GET /metrics HTTP/1.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaa")) {
    if (write(slow, &c, 1) != 1) break;
    closed = ReadAll(slow, 50ms);
    if (!closed.empty()) break;
  }
  EXPECT_EQ(closed, "<closed>");
  EXPECT_LT(SteadyClock::now() - start, 1s);
  EXPECT_EQ(Scrape(2000ms).rfind("HTTP/1.1 200 OK", 0), 0u);
  close(slow);
}

TEST_F(MetricsServerTest, EvictsTheOldestIdleConnectionAtTheBound) {
  MetricsServerLimits limits;
  limits.max_connections = 4;
  Start(limits);
  std::vector<int> idle;
  for (int i = 0; i < 5; ++i) idle.push_back(Connect());
  EXPECT_EQ(ReadAll(idle[0], 1000ms), "<closed>");
  EXPECT_EQ(ReadAll(idle[1], 100ms), "");
  EXPECT_EQ(Scrape(2000ms).rfind("HTTP/1.1 200 OK", 0), 0u);
  for (int fd : idle) close(fd);
}

TEST_F(MetricsServerTest, RefusesAnOversizedHead) {
  MetricsServerLimits limits;
  limits.max_request_head_bytes = 1024;
  Start(limits);
  const int fd = Connect();
  const std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(2000, 'a');
  ASSERT_EQ(write(fd, big.data(), big.size()), static_cast<ssize_t>(big.size()));
  EXPECT_EQ(ReadAll(fd, 1000ms).rfind("HTTP/1.1 431", 0), 0u);
  close(fd);
}

TEST_F(MetricsServerTest, ATakenPortIsAnError) {
  Start(MetricsServerLimits{});
  std::string err;
  EXPECT_FALSE(MetricsServer::Start("127.0.0.1", server_->port(), {}, Body, "", "", &err));
  EXPECT_NE(err.find("EADDRINUSE"), std::string::npos) << err;
}

}  // namespace
}  // namespace ckptwatch
