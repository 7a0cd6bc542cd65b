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

/* Each backend's constructor, for comm.c's list. */
cg_comm *cg_comm_local(void); /* NULL when out of memory */
int cg_comm_create_mpi(int *argc, char ***argv, double timeout_s, cg_comm **out);
int cg_comm_create_tcp_ring(const char *peers, int rank, double timeout_s, cg_comm **out);

#endif
