/* caffegrid solvers: Caffe's solver.prototxt run as Caffe runs it — the train
 * net, interleaved test nets, the update rule and learning-rate policy, display
 * lines in Caffe's log format, metrics as JSON lines, snapshots and exact resume. */
#ifndef CAFFEGRID_SOLVER_H
#define CAFFEGRID_SOLVER_H

#include <stdbool.h>

#include "caffegrid/comm.h"
#include "caffegrid/runtime.h"
#include "caffegrid/net.h"

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef struct cg_solver cg_solver;

/* What a host program asks of a running solver (Caffe's SolverAction, plus INTERRUPT):
 * SNAPSHOT writes a snapshot and trains on; STOP writes a snapshot at the current
 * iteration and returns (Caffe's early exit); INTERRUPT returns without one. */
typedef enum cg_solver_action {
  CG_ACTION_NONE = 0,
  CG_ACTION_SNAPSHOT = 1,
  CG_ACTION_STOP = 2,
  CG_ACTION_INTERRUPT = 3,
} cg_solver_action;
/* Asked after every iteration (by the thread running the solver); with several ranks
 * the strongest request of any rank is what all do, at the same iteration (one small
 * allreduce per iteration while a poll is set). */
typedef cg_solver_action (*cg_solver_poll_fn)(void *user);

typedef struct cg_solver_options {
  int data_threads;          /* for the solver's nets: as cg_net_options */
  bool skip_bad_records;     /* for the solver's nets: as cg_net_options */
  double max_bad_fraction;   /* for the solver's nets: as cg_net_options */
  cg_backend_options backend; /* for the solver's nets: as cg_net_options */
  cg_comm *comm;             /* data-parallel ranks (NULL: alone); borrowed */
  int rank, world_size;      /* filled from comm when given */
  size_t bucket_bytes;       /* gradient bytes per allreduce bucket (0: 4 MiB) */
  int check_every;           /* compare a weight checksum across ranks every N iterations (0: never) */
  long max_iter;             /* > 0 overrides the solver's max_iter (CLI -iterations) */
  const char *final_model;   /* CaffeOnSpark's -model: where the final weights go */
  bool progress;             /* draw a progress bar on a terminal */
  bool no_metrics;           /* do not write PREFIX_metrics.jsonl */
  bool no_prefix_lock;       /* rank 0 does not lock PREFIX.lock (one run per snapshot_prefix): the host holds it */
  cg_solver_poll_fn poll;    /* signals and the like (NULL: none); see cg_solver_action */
  void *poll_user;
  bool continue_on_nonfinite; /* train on when the loss, gradients or weights go NaN/infinite (CLI
                                 -on_nonfinite continue); by default the solver stops with CG_ERR_NONFINITE */
  /* Overrides of the solver file's own fields (how the Spark tasks run a user's solver):
   * each applied as if the file said so, before anything is built. */
  const char *net_path;      /* the net trained and tested: replaces net / train_net (NULL: as written) */
  const char *snapshot_prefix; /* replaces snapshot_prefix (NULL: as written) */
  long solver_max_iter;      /* > 0 replaces max_iter (the learning-rate policy sees it too) */
  bool no_interval_snapshots; /* snapshot: 0 */
  bool no_testing;           /* no test nets: test_iter, test_net and test_interval dropped */
  int test_iter;             /* > 0 replaces test_iter (one test net of the train net) */
} cg_solver_options;

/* The fields of a solver file a host program plans with, read by the library's
 * parser (so `field:value` spellings, comments and deprecated fields are Caffe's).
 * Strings are copied (truncated to fit). */
typedef struct cg_solver_info {
  char net[4096];            /* net, else train_net, as written ("" when neither) */
  char snapshot_prefix[4096]; /* after Caffe's defaulting from the file name */
  long max_iter;
  int snapshot, test_interval, iter_size, test_iter; /* test_iter: the first one, 0 when none */
  bool test_initialization;
} cg_solver_info;
/* From a solver's text; `source_name` (the user's file) is what errors name. */
int cg_solver_text_info(const char *text, size_t len, const char *source_name, cg_solver_info *out);

/* Reads a solver prototxt (upgraded as Caffe does) and builds its nets. Relative
 * net paths are tried as given, then beside the solver file. */
int cg_solver_create_from_file(const char *path, const cg_solver_options *opt, cg_solver **out);
/* The same from the solver's text (shipped to a worker); `source_name` is the user's
 * file, which messages name and relative paths are resolved against. */
int cg_solver_create_from_text(const char *text, size_t len, const char *source_name, const cg_solver_options *opt,
                               cg_solver **out);
/* The net file a solver prototxt names for a phase (TRAIN, 0: its `net`, else
 * `train_net`; TEST, 1: its `net`, else its first `test_net`, else `train_net`), found
 * as the solver finds it: as written when that exists, else beside the solver file.
 * *net_path is malloc'd; *test_iter gets the solver's first test_iter and is left
 * alone when it has none (may be NULL). Errors name the solver file. (CaffeOnSpark's
 * commands name a solver where Caffe's name a net.) */
int cg_solver_file_net(const char *solver_path, int phase, char **net_path, long *test_iter);
void cg_solver_free(cg_solver *s);

/* Fine-tuning: copies weights from one or more comma-separated .caffemodel files. */
int cg_solver_load_weights(cg_solver *s, const char *paths);
/* Resumes from a .solverstate (weights from its learned_net, history, iteration).
 * With a communicator of several ranks every rank calls it and rank 0 decides:
 * rank 0 reads its path (the others' paths are not read) and sends the others what
 * they need, so ranks never resume from different points. */
int cg_solver_restore(cg_solver *s, const char *solverstate_path);
/* Caffe's -snapshot: NULL does nothing; "auto" resumes from the newest verified
 * snapshot of snapshot_prefix when there is one; else resumes from that
 * .solverstate. Collective like cg_solver_restore: rank 0's choice is every rank's.
 * *resumed (may be NULL) says whether it resumed. */
int cg_solver_resume(cg_solver *s, const char *snapshot, bool *resumed);

/* Runs `iters` iterations (tests and snapshots as the solver says). */
int cg_solver_step(cg_solver *s, int iters);
/* Runs to max_iter, then the final snapshot and test, as Caffe's Solve. */
int cg_solver_solve(cg_solver *s);
/* Runs every test net once; values of the first test net's outputs into scores (may be NULL). */
int cg_solver_test_all(cg_solver *s);
/* Writes PREFIX_iter_N.caffemodel and .solverstate (plus the exact-resume side file). */
int cg_solver_snapshot(cg_solver *s);
/* One training run per snapshot prefix, for a host whose solvers run elsewhere with
 * no_prefix_lock (the Spark driver): PREFIX.lock taken as rank 0 takes it (a lock
 * held by another process is CG_ERR_INVALID naming its pid; stale temporary files
 * beside the prefix are removed) into *fd (-1: the prefix's folder does not exist),
 * released by cg_solver_prefix_unlock. */
int cg_solver_prefix_lock(const char *prefix, const char *solver_name, int *fd);
void cg_solver_prefix_unlock(int fd);
/* The newest complete snapshot (.caffemodel, .solverstate and run state all
 * present) of this solver's snapshot_prefix, as a malloc'd .solverstate path, or NULL. */
char *cg_solver_latest_snapshot(const cg_solver *s);

int cg_solver_iter(const cg_solver *s);
/* The action that ended the last step or solve early (CG_ACTION_STOP or _INTERRUPT), else CG_ACTION_NONE. */
cg_solver_action cg_solver_stopped(const cg_solver *s);
cg_net *cg_solver_net(cg_solver *s);
int cg_solver_num_test_nets(const cg_solver *s);
cg_net *cg_solver_test_net(cg_solver *s, int i);
/* The mean of test net i's output named `name` at the last test, or NAN. */
double cg_solver_last_test_score(const cg_solver *s, int i, const char *name);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
