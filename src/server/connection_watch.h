// Watches the TCP connection a request came on, to notice a client that went away while its
// request waits or generates. httplib 0.11 hands handlers no socket, so the socket is found by
// its addresses: the one whose local and peer ports (and peer address) are the request's. It
// stays open while the handler or its content provider runs, on the thread that owns it.
// When it cannot be found, the client is taken to be there.
#pragma once

#include <string>

namespace fastkv::server {

class ConnectionWatch {
 public:
  // The request's peer address (numeric) and ports, as httplib reports them (remote_addr,
  // remote_port, local_port).
  ConnectionWatch(const std::string& remote_addr, int remote_port, int local_port);
  // True once the peer has closed (or reset) the connection.
  bool closed() const;

 private:
  int fd_;  // the connection's socket; -1 when it was not found
};

}  // namespace fastkv::server
