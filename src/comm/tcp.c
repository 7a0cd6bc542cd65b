/* A communicator over plain TCP sockets, for workers that no MPI launcher
 * started (Spark barrier tasks): each rank listens, learns every rank's address
 * from the host program (Spark's allGather), and connects to the next rank in a
 * ring. Collectives are ring algorithms: allreduce = reduce-scatter + allgather
 * (bandwidth-optimal, 2 (n-1)/n of the data on each link). Sends and receives
 * overlap in a poll() loop so the ring never deadlocks on full socket buffers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "comm/comm_impl.h"

struct cg_tcp_listener {
  int fd;
  int port;
};

typedef struct tcp_state {
  int next_fd, prev_fd; /* send to rank+1, receive from rank-1 */
  double timeout_s;     /* a silent peer for this long is a lost peer */
} tcp_state;

static int listen_on(const char *bind_host, int port, cg_tcp_listener **out);

int cg_comm_tcp_listen(const char *bind_host, cg_tcp_listener **out) { return listen_on(bind_host, 0, out); }

int cg_comm_tcp_listen_port(int port, cg_tcp_listener **out) { return listen_on(NULL, port, out); }

static int listen_on(const char *bind_host, int port, cg_tcp_listener **out) {
  *out = NULL;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return cg_error(CG_ERR_COMM, "cannot open a socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind_host && bind_host[0] && inet_pton(AF_INET, bind_host, &a.sin_addr) != 1) {
    close(fd);
    return cg_error(CG_ERR_INVALID, "'%s' is not an IPv4 address to listen on", bind_host);
  }
  socklen_t len = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    int e = errno;
    close(fd);
    return cg_error(CG_ERR_COMM, "cannot listen for peers on port %d: %s", port, strerror(e));
  }
  cg_tcp_listener *l = malloc(sizeof *l);
  l->fd = fd;
  l->port = ntohs(a.sin_port);
  *out = l;
  return CG_OK;
}

int cg_comm_tcp_port(const cg_tcp_listener *l) { return l->port; }

void cg_comm_tcp_listener_free(cg_tcp_listener *l) {
  if (!l) return;
  if (l->fd >= 0) close(l->fd);
  free(l);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const char *address, double deadline, int *out) {
  char host[256];
  const char *colon = strrchr(address, ':');
  if (!colon || (size_t)(colon - address) >= sizeof host)
    return cg_error(CG_ERR_INVALID, "peer address '%s' is not host:port", address);
  memcpy(host, address, (size_t)(colon - address));
  host[colon - address] = '\0';
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int gai = getaddrinfo(host, colon + 1, &hints, &res);
  if (gai) return cg_error(CG_ERR_COMM, "cannot resolve peer '%s': %s", address, gai_strerror(gai));
  int rc = CG_ERR_COMM;
  while (now_s() < deadline) { /* the peer may not be listening yet */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
      *out = fd;
      rc = CG_OK;
      break;
    }
    if (fd >= 0) close(fd);
    usleep(50000);
  }
  freeaddrinfo(res);
  return rc ? cg_error(CG_ERR_COMM, "cannot connect to peer %s within the timeout", address) : CG_OK;
}

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r, n -= (size_t)r;
  }
  return 0;
}

static void tune(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Sends `out` to the next rank while receiving `in` from the previous one. */
static int exchange(cg_comm *c, const void *out, size_t out_n, void *in, size_t in_n) {
  tcp_state *s = c->state;
  const char *op = out;
  char *ip = in;
  size_t sent = 0, got = 0;
  double deadline = now_s() + s->timeout_s;
  while (sent < out_n || got < in_n) {
    struct pollfd p[2] = {{.fd = s->next_fd, .events = sent < out_n ? POLLOUT : 0},
                          {.fd = s->prev_fd, .events = got < in_n ? POLLIN : 0}};
    int ready = poll(p, 2, 1000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return cg_error(CG_ERR_COMM, "rank %d: poll failed: %s", c->rank, strerror(errno));
    if (ready == 0) {
      if (now_s() > deadline)
        return cg_error(CG_ERR_COMM, "rank %d: no data from rank %d for %.0f s: a peer was lost", c->rank,
                        (c->rank + c->size - 1) % c->size, s->timeout_s);
      continue;
    }
    if ((p[0].revents & (POLLERR | POLLHUP)) || (p[1].revents & (POLLERR | POLLHUP) && !(p[1].revents & POLLIN)))
      return cg_error(CG_ERR_COMM, "rank %d: the connection to a neighbour closed: a peer was lost", c->rank);
    if (p[0].revents & POLLOUT) {
      ssize_t w = send(s->next_fd, op + sent, out_n - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EINTR)
        return cg_error(CG_ERR_COMM, "rank %d: sending to rank %d failed: %s (a peer was lost?)", c->rank,
                        (c->rank + 1) % c->size, strerror(errno));
      if (w > 0) sent += (size_t)w, deadline = now_s() + s->timeout_s;
    }
    if (p[1].revents & POLLIN) {
      ssize_t r = recv(s->prev_fd, ip + got, in_n - got, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
        return cg_error(CG_ERR_COMM, "rank %d: rank %d closed the connection: a peer was lost", c->rank,
                        (c->rank + c->size - 1) % c->size);
      if (r > 0) got += (size_t)r, deadline = now_s() + s->timeout_s;
    }
  }
  return CG_OK;
}

typedef void (*reduce_fn)(void *acc, const void *in, size_t n);
static void sum_floats(void *acc, const void *in, size_t n) {
  float *a = acc;
  const float *b = in;
  for (size_t i = 0; i < n; i++) a[i] += b[i];
}
static void max_doubles(void *acc, const void *in, size_t n) {
  double *a = acc;
  const double *b = in;
  for (size_t i = 0; i < n; i++) a[i] = b[i] > a[i] ? b[i] : a[i];
}

/* Ring allreduce over n elements of `width` bytes. Segment k is reduced around the
 * ring ending at rank k - 1, then passed on; every rank sums in the same order per
 * segment, so every rank ends with identical bits. */
static int ring_allreduce(cg_comm *c, void *data, size_t n, size_t width, reduce_fn reduce) {
  int size = c->size, rank = c->rank;
  if (size == 1 || n == 0) return CG_OK;
  size_t base = n / (size_t)size, extra = n % (size_t)size;
#define SEG_START(k) ((size_t)(k) * base + ((size_t)(k) < extra ? (size_t)(k) : extra))
#define SEG_LEN(k) (base + ((size_t)(k) < extra ? 1 : 0))
  char *d = data;
  char *tmp = malloc((base + 1) * width);
  if (!tmp) return cg_error(CG_ERR_NOMEM, "out of memory");
  int rc = CG_OK;
  for (int step = 0; step < size - 1 && !rc; step++) { /* reduce-scatter */
    int send_k = (rank - step + size) % size, recv_k = (rank - step - 1 + size) % size;
    rc = exchange(c, d + SEG_START(send_k) * width, SEG_LEN(send_k) * width, tmp, SEG_LEN(recv_k) * width);
    if (!rc) reduce(d + SEG_START(recv_k) * width, tmp, SEG_LEN(recv_k));
  }
  for (int step = 0; step < size - 1 && !rc; step++) { /* allgather of the reduced segments */
    int send_k = (rank + 1 - step + size) % size, recv_k = (rank - step + size) % size;
    rc = exchange(c, d + SEG_START(send_k) * width, SEG_LEN(send_k) * width, d + SEG_START(recv_k) * width,
                  SEG_LEN(recv_k) * width);
  }
#undef SEG_START
#undef SEG_LEN
  free(tmp);
  return rc;
}

static int tcp_sum(cg_comm *c, float *data, size_t n) { return ring_allreduce(c, data, n, sizeof(float), sum_floats); }
static int tcp_max(cg_comm *c, double *data, size_t n) { return ring_allreduce(c, data, n, sizeof(double), max_doubles); }

/* Every rank's block travels size-1 hops around the ring. */
static int tcp_allgather(cg_comm *c, const void *send, void *recv, size_t bytes) {
  char *r = recv;
  memcpy(r + (size_t)c->rank * bytes, send, bytes);
  for (int step = 0; step < c->size - 1; step++) {
    int send_k = (c->rank - step + c->size) % c->size, recv_k = (c->rank - step - 1 + c->size) % c->size;
    int rc = exchange(c, r + (size_t)send_k * bytes, bytes, r + (size_t)recv_k * bytes, bytes);
    if (rc) return rc;
  }
  return CG_OK;
}

static int tcp_broadcast(cg_comm *c, void *data, size_t bytes, int root) {
  tcp_state *s = c->state;
  if (c->size == 1) return CG_OK;
  /* passed along the ring from root; the rank before root does not forward */
  if (c->rank != root && read_all(s->prev_fd, data, bytes) != 0)
    return cg_error(CG_ERR_COMM, "rank %d: broadcast from rank %d failed: a peer was lost", c->rank, root);
  if ((c->rank + 1) % c->size != root && write_all(s->next_fd, data, bytes) != 0)
    return cg_error(CG_ERR_COMM, "rank %d: broadcast failed: a peer was lost", c->rank);
  return CG_OK;
}

static int tcp_barrier(cg_comm *c) {
  double one = 1;
  return tcp_max(c, &one, 1);
}

static void tcp_abort(cg_comm *c, int code, const char *message) {
  tcp_state *s = c->state;
  fprintf(stderr, "rank %d: %s\n", c->rank, message);
  /* closing our sockets makes the neighbours' next exchange fail, and so on around the ring */
  close(s->next_fd);
  close(s->prev_fd);
  exit(code ? code : 1);
}

static void tcp_destroy(cg_comm *c) {
  tcp_state *s = c->state;
  if (!s) return;
  if (s->next_fd >= 0) close(s->next_fd);
  if (s->prev_fd >= 0 && s->prev_fd != s->next_fd) close(s->prev_fd);
  free(s);
}

static const cg_comm_ops tcp_ops = {
    .name = "tcp", .allreduce_sum = tcp_sum, .allreduce_max = tcp_max, .broadcast = tcp_broadcast,
    .barrier = tcp_barrier, .allgather = tcp_allgather, .abort = tcp_abort, .destroy = tcp_destroy,
};

int cg_comm_tcp_connect(cg_tcp_listener *l, int rank, int size, const char *const *addresses, double timeout_s,
                        cg_comm **out) {
  *out = NULL;
  if (size < 1 || rank < 0 || rank >= size) return cg_error(CG_ERR_INVALID, "rank %d of %d is not valid", rank, size);
  tcp_state *s = calloc(1, sizeof *s);
  cg_comm *c = calloc(1, sizeof *c);
  s->next_fd = s->prev_fd = -1;
  s->timeout_s = timeout_s > 0 ? timeout_s : CG_COMM_DEFAULT_PEER_TIMEOUT_S;
  c->ops = &tcp_ops, c->rank = rank, c->size = size, c->state = s;
  if (size == 1) {
    *out = c;
    return CG_OK;
  }
  double deadline = now_s() + s->timeout_s;
  int rc = connect_to(addresses[(rank + 1) % size], deadline, &s->next_fd);
  /* the peer proves who it is with its rank, so a stray connection is not mistaken for it */
  int32_t me = rank, them = -1;
  if (!rc && write_all(s->next_fd, &me, sizeof me) != 0) rc = cg_error(CG_ERR_COMM, "rank %d: handshake failed", rank);
  while (!rc && s->prev_fd < 0) {
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    int ready = poll(&p, 1, 1000);
    if (ready == 0 && now_s() > deadline) rc = cg_error(CG_ERR_COMM, "rank %d: rank %d never connected", rank, (rank + size - 1) % size);
    if (ready <= 0) continue;
    int fd = accept(l->fd, NULL, NULL);
    if (fd >= 0 && read_all(fd, &them, sizeof them) == 0 && them == (rank + size - 1) % size) s->prev_fd = fd;
    else if (fd >= 0) close(fd);
  }
  if (rc) {
    cg_comm_free(c);
    return rc;
  }
  tune(s->next_fd);
  tune(s->prev_fd);
  *out = c;
  return CG_OK;
}
