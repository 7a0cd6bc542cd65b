/* The MPI communicator (Open MPI from Debian; mpirun or srun --mpi=pmix).
 * Initialised with MPI_THREAD_MULTIPLE because the communication thread and the
 * main thread may both call MPI (collectives are still issued in one order). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "caffegrid/error.h"
#include "comm/comm_impl.h"
#include "comm/mpi_watchdog.h"

typedef struct mpi_state {
  bool we_initialized;
  cg_mpi_watchdog *watchdog; /* the peer timeout; NULL when off */
} mpi_state;

/* Every collective is timed by the watchdog. */
#define WATCHED(c, call)                                   \
  do {                                                     \
    cg_mpi_watchdog *wd_ = ((mpi_state *)(c)->state)->watchdog; \
    cg_mpi_watchdog_enter(wd_);                            \
    rc = (call);                                           \
    cg_mpi_watchdog_leave(wd_);                            \
  } while (0)

static int mpi_failed(int rc, const char *what) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return cg_error(CG_ERR_COMM, "MPI %s failed: %.*s", what, len, text);
}

static int mpi_sum(cg_comm *c, float *data, size_t n) {
  /* MPI counts are int: reduce in chunks for very large arrays */
  for (size_t done = 0; done < n;) {
    size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
    int rc;
    WATCHED(c, MPI_Allreduce(MPI_IN_PLACE, data + done, (int)chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "allreduce");
    done += chunk;
  }
  return CG_OK;
}

static int mpi_max(cg_comm *c, double *data, size_t n) {
  int rc;
  WATCHED(c, MPI_Allreduce(MPI_IN_PLACE, data, (int)n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  return rc == MPI_SUCCESS ? CG_OK : mpi_failed(rc, "allreduce");
}

static int mpi_broadcast(cg_comm *c, void *data, size_t bytes, int root) {
  for (size_t done = 0; done < bytes;) {
    size_t chunk = bytes - done > (1u << 30) ? (1u << 30) : bytes - done;
    int rc;
    WATCHED(c, MPI_Bcast((char *)data + done, (int)chunk, MPI_BYTE, root, MPI_COMM_WORLD));
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "broadcast");
    done += chunk;
  }
  return CG_OK;
}

static int mpi_barrier(cg_comm *c) {
  int rc;
  WATCHED(c, MPI_Barrier(MPI_COMM_WORLD));
  return rc == MPI_SUCCESS ? CG_OK : mpi_failed(rc, "barrier");
}

static int mpi_allgather(cg_comm *c, const void *send, void *recv, size_t bytes) {
  if (bytes > (1u << 30)) return cg_error(CG_ERR_COMM, "allgather of %zu bytes per rank is too large", bytes);
  int rc;
  WATCHED(c, MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD));
  return rc == MPI_SUCCESS ? CG_OK : mpi_failed(rc, "allgather");
}

static void mpi_abort(cg_comm *c, int code, const char *message) {
  fprintf(stderr, "rank %d: %s\n", c->rank, message);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
  exit(code ? code : 1);
}

static void mpi_destroy(cg_comm *c) {
  mpi_state *s = c->state;
  int finalized = 0;
  if (s) cg_mpi_watchdog_stop(s->watchdog);
  MPI_Finalized(&finalized);
  if (s && s->we_initialized && !finalized) MPI_Finalize();
  free(s);
}

static const cg_comm_ops mpi_ops = {
    .name = "mpi", .allreduce_sum = mpi_sum, .allreduce_max = mpi_max, .broadcast = mpi_broadcast,
    .barrier = mpi_barrier, .allgather = mpi_allgather, .abort = mpi_abort, .destroy = mpi_destroy,
};

int cg_comm_create_mpi(int *argc, char ***argv, double timeout_s, cg_comm **out) {
  *out = NULL;
  cg_comm *c = calloc(1, sizeof *c);
  mpi_state *s = calloc(1, sizeof *s);
  if (!c || !s) {
    free(c);
    free(s);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  int initialized = 0, provided = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) {
      free(c);
      free(s);
      return mpi_failed(rc, "initialisation");
    }
    s->we_initialized = true;
    if (provided < MPI_THREAD_MULTIPLE) {
      free(c);
      free(s);
      return cg_error(CG_ERR_COMM, "this MPI does not grant MPI_THREAD_MULTIPLE (got level %d)", provided);
    }
  }
  /* errors come back as codes so the job can report them, not as MPI's default abort */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &c->size);
  c->ops = &mpi_ops;
  c->state = s;
  int rc = cg_mpi_watchdog_start(MPI_COMM_WORLD, timeout_s == 0 ? CG_COMM_DEFAULT_PEER_TIMEOUT_S : timeout_s, &s->watchdog);
  if (rc) {
    cg_comm_free(c);
    return rc;
  }
  *out = c;
  return CG_OK;
}
