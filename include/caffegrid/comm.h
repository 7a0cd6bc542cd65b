/* caffegrid communicators: how data-parallel ranks exchange gradients. The
 * trainer only calls this interface; the backends come from one list: local (one
 * process), MPI (Open MPI under mpirun or Slurm's srun) and a TCP ring (processes
 * any launcher started; Spark tasks). NCCL later, as one more entry. */
#ifndef CAFFEGRID_COMM_H
#define CAFFEGRID_COMM_H

#include <stddef.h>

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef struct cg_comm cg_comm;

enum { CG_COMM_DEFAULT_PEER_TIMEOUT_S = 300 };

/* Which communicator, and what its backend needs. A zeroed struct is a local one.
 * (caffegrid/environment.h fills it from the launcher's variables, as the CLI does.) */
typedef struct cg_comm_options {
  const char *backend; /* one of cg_comm_backend_names(): "local" (NULL), "mpi", "tcp" */
  /* mpi: MPI_COMM_WORLD (Open MPI under mpirun, or srun --mpi=pmix), MPI initialised
   * with MPI_THREAD_MULTIPLE unless the program did; the program's argc/argv or NULL.
   * A build without MPI answers CG_ERR_UNSUPPORTED. */
  int *argc;
  char ***argv;
  /* tcp: a ring among processes started by anything (a job script): `peers` lists
   * "host:port,host:port,..." of every rank in rank order, this process is `rank` and
   * listens on its own entry's port. */
  const char *peers;
  int rank;
  /* mpi and tcp: the peer timeout. A collective that makes no progress for this
   * long ends the job with a message naming the silent rank (0: 300 s; MPI only:
   * negative turns the watchdog off). */
  double timeout_s;
} cg_comm_options;

/* The backends this library was built with, NULL-terminated. */
const char *const *cg_comm_backend_names(void);
/* A communicator from `options` (NULL: local). An unknown backend is an error
 * listing the known ones. */
int cg_comm_create(const cg_comm_options *options, cg_comm **out);
void cg_comm_free(cg_comm *c); /* finalizes MPI when it started it; NULL is a no-op */

/* TCP communicator for workers no MPI launcher started (Spark tasks): listen
 * first, publish host:port through the host program (e.g. Spark's barrier
 * allGather), then connect with everyone's address, in rank order. A peer silent
 * for timeout_s seconds (0: 300) is reported as lost. */
typedef struct cg_tcp_listener cg_tcp_listener;
int cg_comm_tcp_listen(const char *bind_host, cg_tcp_listener **out); /* bind_host NULL: any address */
int cg_comm_tcp_listen_port(int port, cg_tcp_listener **out); /* a chosen port, any address */
int cg_comm_tcp_port(const cg_tcp_listener *l);
int cg_comm_tcp_connect(cg_tcp_listener *l, int rank, int size, const char *const *addresses, double timeout_s,
                        cg_comm **out);
void cg_comm_tcp_listener_free(cg_tcp_listener *l);

int cg_comm_rank(const cg_comm *c);
int cg_comm_size(const cg_comm *c);
const char *cg_comm_backend(const cg_comm *c); /* "local", "mpi" or "tcp" */

/* In-place sum over all ranks. Blocking; every rank must call it with the same n. */
int cg_comm_allreduce_sum(cg_comm *c, float *data, size_t n);
/* In-place max over all ranks, in double (for checksums and agreement checks). */
int cg_comm_allreduce_max(cg_comm *c, double *data, size_t n);
int cg_comm_broadcast(cg_comm *c, void *data, size_t bytes, int root);
int cg_comm_barrier(cg_comm *c);
/* Every rank's `bytes` from `send`, concatenated in rank order into `recv` (size * bytes). */
int cg_comm_allgather(cg_comm *c, const void *send, void *recv, size_t bytes);
/* Ends every rank of the job with this message (never returns). */
void cg_comm_abort(cg_comm *c, int code, const char *message) __attribute__((noreturn));

/* Background reduction: a communication thread runs the blocking allreduces in
 * the order they were started, so they overlap with computation (Open MPI does
 * not progress non-blocking collectives by itself). */
typedef struct cg_comm_async cg_comm_async;
int cg_comm_async_create(cg_comm *c, cg_comm_async **out);
void cg_comm_async_free(cg_comm_async *a);
/* Queues an in-place sum of data[0..n); `data` must stay untouched until the wait. */
int cg_comm_async_start(cg_comm_async *a, float *data, size_t n);
/* Waits for everything started so far; returns the first error, if any. */
int cg_comm_async_wait_all(cg_comm_async *a);
/* Seconds the caller spent blocked in cg_comm_async_wait_all since creation. */
double cg_comm_async_wait_seconds(const cg_comm_async *a);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
