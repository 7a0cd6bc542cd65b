/* The communicator front: backend choice and dispatch. */
#include <stdlib.h>

#include "caffegrid/error.h"
#include "comm/comm_impl.h"

int cg_comm_create_auto(int *argc, char ***argv, cg_comm **out) {
  if (cg_comm_mpi_launched()) return cg_comm_mpi_create(argc, argv, out);
  *out = cg_comm_local();
  return *out ? CG_OK : cg_error(CG_ERR_NOMEM, "out of memory");
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
