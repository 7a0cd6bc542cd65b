/* caffegrid train: run a solver, with Caffe's flags (-solver, -weights, -snapshot,
 * -iterations) and CaffeOnSpark's spelling (-train -conf S -model OUT). */
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/comm.h"
#include "caffegrid/error.h"
#include "caffegrid/feed.h"
#include "caffegrid/log.h"
#include "caffegrid/solver.h"
#include "caffegrid/environment.h"
#include "commands.h"
#include "cli_context.h"
#include "flags.h"
#include "caffegrid/runtime.h"
#include "signals.h"

/* Ranks on one machine split its cores: unless the user set OPENBLAS_NUM_THREADS,
 * each rank's BLAS uses (cores it may run on) / (ranks on this node) threads, so
 * launchers that bind (mpirun) and ones that don't (srun with task/none) compute
 * the same way, and ranks don't oversubscribe the cores. */
static void share_cores_between_local_ranks(void) {
  if (getenv("OPENBLAS_NUM_THREADS")) return;
  const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (!local) local = getenv("SLURM_STEP_TASKS_PER_NODE"); /* "2" or "2(x3)" */
  if (!local) local = getenv("SLURM_TASKS_PER_NODE");
  int ranks_here = local ? atoi(local) : 1;
  cpu_set_t set;
  int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (ranks_here > 1 && cores >= online) cores = (int)online / ranks_here; /* unbound: take our share */
  cg_math_threads_set(cores > 0 ? cores : 1);
  if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(cores > 0 ? cores : 1);
}

int cmd_train(int argc, char **argv) {
  cg_flag flags[] = {
      {"solver", NULL, false, "the solver prototxt"},
      {"conf", NULL, false, "CaffeOnSpark's name for -solver"},
      {"weights", NULL, false, "fine-tune from these .caffemodel files (comma-separated)"},
      {"snapshot", NULL, false, "resume from this .solverstate"},
      {"iterations", NULL, false, "train to this iteration instead of the solver's max_iter"},
      {"model", NULL, false, "CaffeOnSpark's -model: write the final weights to this file"},
      {"clusterSize", NULL, false, "CaffeOnSpark: expected number of ranks (checked against the launch)"},
      {"connection", NULL, false, "ethernet (TCP) or infiniband (UCX): Open MPI's transport"},
      {"bucket_mb", NULL, false, "gradient megabytes per allreduce bucket (default 4)"},
      {"check_every", NULL, false, "compare weights across ranks every N iterations (default 0: never)"},
      {"devices", NULL, false, "CaffeOnSpark: devices per process (CPU build: must be 1)"},
      {"sigint_effect", NULL, false, "snapshot, stop (default: snapshot, then stop) or none on SIGINT (Ctrl-C)"},
      {"sighup_effect", NULL, false, "snapshot (default), stop or none on SIGHUP"},
      {"sigterm_effect", NULL, false, "snapshot, stop (default: snapshot, then stop; Slurm/YARN preemption) or none"},
      {"on_nonfinite", NULL, false, "stop (default) or continue when the loss, gradients or weights go NaN/infinite"},
      {"peer_timeout", NULL, false, "seconds a collective waits for a silent rank before the job ends (default 300)"},
      {"gpu", NULL, false, "not available in this build: CPU only"},
      {"train", NULL, true, "CaffeOnSpark's mode flag (accepted)"},
      {"help", NULL, true, "this help"},
      {NULL, NULL, false, NULL},
  };
  char *positional[64];
  int np = 0;
  if (argc > 64 || cg_flags_parse(argc, argv, flags, positional, &np, "train")) return 1;
  if (cg_flag_get(flags, "help")) {
    cg_flags_usage(flags, "train", "-solver S [-weights W] [-snapshot STATE] [-iterations N]");
    return 0;
  }
  const char *solver_path = cg_flag_get(flags, "solver");
  if (!solver_path) solver_path = cg_flag_get(flags, "conf");
  long iterations, cluster_size, bucket_mb, check_every;
  if (!cg_flag_int(flags, "iterations", 0, &iterations) || !cg_flag_int(flags, "clusterSize", 0, &cluster_size) ||
      !cg_flag_int(flags, "bucket_mb", 4, &bucket_mb) || !cg_flag_int(flags, "check_every", 0, &check_every))
    return 1;
  if (iterations < 0) {
    fprintf(stderr, "caffegrid train: -iterations must be positive, got %ld\n", iterations);
    return 1;
  }
  if (!solver_path) {
    fprintf(stderr, "caffegrid train: -solver is required (a solver .prototxt)\n");
    return 1;
  }
  const char *weights = cg_flag_get(flags, "weights"), *snapshot = cg_flag_get(flags, "snapshot");
  if (weights && snapshot) {
    fprintf(stderr, "caffegrid train: give -weights (fine-tune) or -snapshot (resume), not both\n");
    return 1;
  }
  const char *connection = cg_flag_get(flags, "connection");
  if (connection) {
    /* Open MPI reads its transport choice from the environment at MPI_Init */
    if (strcmp(connection, "ethernet") == 0) {
      setenv("OMPI_MCA_pml", "ob1", 1);
      setenv("OMPI_MCA_btl", "tcp,self", 1);
    } else if (strcmp(connection, "infiniband") == 0) {
      setenv("OMPI_MCA_pml", "ucx", 1);
    } else {
      fprintf(stderr, "caffegrid train: -connection must be ethernet or infiniband, got '%s'\n", connection);
      return 1;
    }
  }
  /* before MPI and the computing threads start: they inherit the signals blocked */
  if (!cg_signals_install(flags, "train")) return 1;
  cg_cli_context ctx;
  if (!cg_cli_begin(flags, "train", 0, true, &ctx)) return 1;
  cg_comm *comm = ctx.comm;
  int rank = ctx.net.rank, world = ctx.net.world_size;
  share_cores_between_local_ranks();
  if (cluster_size && cluster_size != world) {
    fprintf(stderr, "caffegrid train: -clusterSize %ld but the job was launched with %d rank(s)\n", cluster_size, world);
    cg_cli_end(&ctx);
    return 1;
  }
  cg_solver_options opt = {.comm = comm, .max_iter = iterations, .final_model = cg_flag_get(flags, "model"),
                           .progress = isatty(2) != 0 && rank == 0, .bucket_bytes = (size_t)bucket_mb << 20,
                           .check_every = (int)check_every, .data_threads = ctx.net.data_threads,
                           .skip_bad_records = ctx.net.skip_bad_records, .max_bad_fraction = ctx.net.max_bad_fraction};
  const char *on_nonfinite = cg_flag_get(flags, "on_nonfinite");
  if (on_nonfinite && strcmp(on_nonfinite, "stop") != 0 && strcmp(on_nonfinite, "continue") != 0) {
    fprintf(stderr, "caffegrid train: -on_nonfinite must be stop or continue, got '%s'\n", on_nonfinite);
    cg_cli_end(&ctx);
    return 1;
  }
  opt.continue_on_nonfinite = on_nonfinite && strcmp(on_nonfinite, "continue") == 0;
  cg_signals_attach(&opt);
  CG_LOG_INFO("Use CPU.");
  if (world > 1) CG_LOG_INFO("Data-parallel training on %d ranks (%s)", world, cg_comm_backend(comm));
  cg_solver *s = NULL;
  int rc = cg_solver_create_from_file(solver_path, &opt, &s);
  if (!rc && weights) rc = cg_solver_load_weights(s, weights);
  if (!rc) rc = cg_solver_resume(s, snapshot, NULL); /* rank 0's -snapshot decides for the job */
  /* CaffeOnSpark's nets: MemoryData layers name their data (after the resume: positions carry over) */
  if (!rc) rc = cg_net_feed_own_sources(cg_solver_net(s), NULL);
  for (int i = 0; !rc && i < cg_solver_num_test_nets(s); i++) rc = cg_net_feed_own_sources(cg_solver_test_net(s, i), NULL);
  if (!rc) rc = cg_solver_solve(s);
  if (rc) {
    char message[4200];
    snprintf(message, sizeof message, "caffegrid train: %s", cg_error_message());
    if (world > 1) cg_comm_abort(comm, 1, message); /* the other ranks must not wait for us forever */
    fprintf(stderr, "%s\n", message);
  }
  cg_solver_free(s);
  cg_cli_end(&ctx);
  return rc ? 1 : 0;
}
