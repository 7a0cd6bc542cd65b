/* The communicator of a single process: every collective is the identity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "comm/comm_impl.h"

static int local_sum(cg_comm *c, float *data, size_t n) {
  (void)c, (void)data, (void)n;
  return CG_OK;
}

static int local_max(cg_comm *c, double *data, size_t n) {
  (void)c, (void)data, (void)n;
  return CG_OK;
}

static int local_broadcast(cg_comm *c, void *data, size_t bytes, int root) {
  (void)c, (void)data, (void)bytes;
  return root == 0 ? CG_OK : cg_error(CG_ERR_INVALID, "broadcast from rank %d in a job of one process", root);
}

static int local_barrier(cg_comm *c) {
  (void)c;
  return CG_OK;
}

static int local_allgather(cg_comm *c, const void *send, void *recv, size_t bytes) {
  (void)c;
  memcpy(recv, send, bytes);
  return CG_OK;
}

static void local_abort(cg_comm *c, int code, const char *message) {
  (void)c;
  fprintf(stderr, "%s\n", message);
  exit(code ? code : 1);
}

static const cg_comm_ops local_ops = {
    .name = "local", .allreduce_sum = local_sum, .allreduce_max = local_max, .broadcast = local_broadcast,
    .barrier = local_barrier, .allgather = local_allgather, .abort = local_abort,
};

cg_comm *cg_comm_local(void) {
  cg_comm *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->ops = &local_ops;
  c->size = 1;
  return c;
}
