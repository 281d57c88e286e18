// The TCP connection an HTTP request arrived on, to notice a client that
// hangs up while its non-streamed answer is still being generated (a
// streamed answer notices on its next write). cpp-httplib 0.11 hands
// handlers the request but not its socket, so the socket is found by its
// two endpoints, which identify it uniquely while the handler runs.
#pragma once

#include "httplib.h"

namespace llmesh::gateway {

class ClientConnection {
 public:
  // The socket of `req`'s connection; an unwatched one (Closed() always
  // false) when it cannot be found.
  static ClientConnection Of(const httplib::Request& req);

  // True once the client has closed or reset the connection.
  bool Closed() const;

 private:
  explicit ClientConnection(int fd) : fd_(fd) {}
  int fd_ = -1;  // owned by cpp-httplib, valid while the handler runs
};

}  // namespace llmesh::gateway
