/* The communicator front: backend choice and dispatch. */
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "comm/comm_impl.h"

/* CAFFEGRID_PEERS=host:port,host:port,... and CAFFEGRID_RANK=r: a TCP ring among
 * processes started by anything (a job script, Spark); rank r listens on its own entry's port. */
static int tcp_from_environment(const char *peers, cg_comm **out) {
  const char *rank_text = getenv("CAFFEGRID_RANK");
  if (!rank_text) return cg_error(CG_ERR_INVALID, "CAFFEGRID_PEERS is set but CAFFEGRID_RANK is not");
  char *copy = strdup(peers), *addresses[4096];
  int size = 0;
  for (char *save, *a = strtok_r(copy, ",", &save); a && size < 4096; a = strtok_r(NULL, ",", &save)) addresses[size++] = a;
  int rank = atoi(rank_text), rc = CG_OK;
  if (rank < 0 || rank >= size) rc = cg_error(CG_ERR_INVALID, "CAFFEGRID_RANK=%s but CAFFEGRID_PEERS lists %d peers", rank_text, size);
  cg_tcp_listener *l = NULL;
  if (!rc) {
    const char *colon = strrchr(addresses[rank], ':');
    rc = cg_comm_tcp_listen_port(colon ? atoi(colon + 1) : 0, &l);
  }
  const char *timeout = getenv("CAFFEGRID_PEER_TIMEOUT");
  if (!rc) rc = cg_comm_tcp_connect(l, rank, size, (const char *const *)addresses, timeout ? atof(timeout) : 0, out);
  cg_comm_tcp_listener_free(l);
  free(copy);
  return rc;
}

/* started by mpirun or srun: from the variables those launchers set (read here, not in
 * mpi.c, so that a build without MPI can tell such a launch and refuse it) */
bool cg_comm_mpi_launched(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") ||
         (getenv("SLURM_STEP_ID") && getenv("SLURM_NTASKS") && atoi(getenv("SLURM_NTASKS")) > 1);
}

int cg_comm_create_auto(int *argc, char ***argv, cg_comm **out) {
  if (cg_comm_mpi_launched()) return cg_comm_mpi_create(argc, argv, out);
  const char *peers = getenv("CAFFEGRID_PEERS");
  if (peers && peers[0]) return tcp_from_environment(peers, out);
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
