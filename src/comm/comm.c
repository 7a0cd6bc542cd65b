/* The communicator front: the list of backends, dispatch to them, and the TCP ring
 * from a peer list. */
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "comm/comm_impl.h"

int cg_comm_create_tcp_ring(const char *peers, int rank, double timeout_s, cg_comm **out) {
  *out = NULL;
  char *copy = strdup(peers ? peers : ""), *addresses[4096];
  if (!copy) return cg_error(CG_ERR_NOMEM, "out of memory");
  int size = 0;
  for (char *save, *a = strtok_r(copy, ",", &save); a && size < 4096; a = strtok_r(NULL, ",", &save)) addresses[size++] = a;
  int rc = CG_OK;
  if (size == 0) rc = cg_error(CG_ERR_INVALID, "the peer list '%s' names no host:port", peers ? peers : "");
  else if (rank < 0 || rank >= size) rc = cg_error(CG_ERR_INVALID, "rank %d, but the peer list names %d peers", rank, size);
  cg_tcp_listener *l = NULL;
  if (!rc) {
    const char *colon = strrchr(addresses[rank], ':');
    rc = cg_comm_tcp_listen_port(colon ? atoi(colon + 1) : 0, &l);
  }
  if (!rc) rc = cg_comm_tcp_connect(l, rank, size, (const char *const *)addresses, timeout_s, out);
  cg_comm_tcp_listener_free(l);
  free(copy);
  return rc;
}

static int create_local(const cg_comm_options *o, cg_comm **out) {
  (void)o;
  *out = cg_comm_local();
  return *out ? CG_OK : cg_error(CG_ERR_NOMEM, "out of memory");
}

static int create_mpi(const cg_comm_options *o, cg_comm **out) { return cg_comm_create_mpi(o->argc, o->argv, o->timeout_s, out); }

static int create_tcp(const cg_comm_options *o, cg_comm **out) {
  return cg_comm_create_tcp_ring(o->peers, o->rank, o->timeout_s, out);
}

static const struct {
  const char *name;
  int (*create)(const cg_comm_options *o, cg_comm **out);
} backends[] = {{"local", create_local}, {"mpi", create_mpi}, {"tcp", create_tcp}};
enum { NUM_BACKENDS = sizeof backends / sizeof backends[0] };

const char *const *cg_comm_backend_names(void) {
  static const char *const names[NUM_BACKENDS + 1] = {"local", "mpi", "tcp", NULL};
  return names;
}

int cg_comm_create(const cg_comm_options *options, cg_comm **out) {
  *out = NULL;
  static const cg_comm_options defaults = {0};
  const cg_comm_options *o = options ? options : &defaults;
  const char *name = o->backend && o->backend[0] ? o->backend : "local";
  for (int i = 0; i < NUM_BACKENDS; i++)
    if (strcmp(backends[i].name, name) == 0) return backends[i].create(o, out);
  return cg_error(CG_ERR_INVALID, "unknown communicator '%s' (this caffegrid has: local, mpi, tcp)", name);
}

void cg_comm_free(cg_comm *c) {
  if (!c) return;
  if (c->ops->destroy) c->ops->destroy(c);
  free(c);
}

int cg_comm_rank(const cg_comm *c) { return c->rank; }
int cg_comm_size(const cg_comm *c) { return c->size; }
const char *cg_comm_backend(const cg_comm *c) { return c->ops->name; }
int cg_comm_allreduce_sum(cg_comm *c, float *data, size_t n) { return c->ops->allreduce_sum(c, data, n); }
int cg_comm_allreduce_max(cg_comm *c, double *data, size_t n) { return c->ops->allreduce_max(c, data, n); }
int cg_comm_broadcast(cg_comm *c, void *data, size_t bytes, int root) { return c->ops->broadcast(c, data, bytes, root); }
int cg_comm_barrier(cg_comm *c) { return c->ops->barrier(c); }
int cg_comm_allgather(cg_comm *c, const void *send, void *recv, size_t bytes) {
  return c->ops->allgather(c, send, recv, bytes);
}

void cg_comm_abort(cg_comm *c, int code, const char *message) {
  c->ops->abort(c, code, message);
  abort(); /* a backend's abort does not return; this keeps the promise if one did */
}
