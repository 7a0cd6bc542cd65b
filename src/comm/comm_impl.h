/* A communicator is a table of functions plus backend state (local.c, mpi.c). */
#ifndef CG_COMM_IMPL_H
#define CG_COMM_IMPL_H

#include <stdbool.h>

#include "caffegrid/comm.h"

typedef struct cg_comm_ops {
  const char *name;
  int (*allreduce_sum)(cg_comm *c, float *data, size_t n);
  int (*allreduce_max)(cg_comm *c, double *data, size_t n);
  int (*broadcast)(cg_comm *c, void *data, size_t bytes, int root);
  int (*barrier)(cg_comm *c);
  int (*allgather)(cg_comm *c, const void *send, void *recv, size_t bytes);
  void (*abort)(cg_comm *c, int code, const char *message);
  void (*destroy)(cg_comm *c);
} cg_comm_ops;

struct cg_comm {
  const cg_comm_ops *ops;
  int rank, size;
  void *state;
};

/* Backends: MPI is tried when a launcher's environment is present. */

#endif
