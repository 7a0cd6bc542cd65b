/* The inside of a solver, shared by solver.c (the loop) and snapshot.c. */
#ifndef CG_SOLVER_IMPL_H
#define CG_SOLVER_IMPL_H

#include <stdint.h>
#include <stdio.h>

#include "caffegrid/solver.h"
#include "proto/caffe.pb-c.h"
#include "solvers/data_parallel.h"
#include "solvers/update_rule.h"

enum { CG_MAX_TEST_NETS = 16, CG_MAX_TEST_OUTPUTS = 64 };

struct cg_solver {
  Caffe__SolverParameter *param;
  char *source_name;
  cg_solver_options opt;
  cg_net *net;
  cg_net *test_nets[CG_MAX_TEST_NETS];
  int num_test_nets;
  cg_data_parallel *dp;   /* NULL when training alone */
  bool weights_synced;    /* rank 0's weights have been sent to every rank */
  cg_update_fn update;
  int history_slots;
  float *history;         /* history_slots * param_count floats */
  int iter, current_step;
  cg_solver_action stopped; /* what ended the last step early (cg_solver_stopped) */
  float *loss_window;     /* the last average_loss losses, for the smoothed loss */
  int loss_count;
  float smoothed_loss;
  FILE *metrics;
  char *metrics_path;
  int metrics_resumed_at;  /* a restore's iteration: earlier runs' lines from it on are dropped; else -1 */
  int prefix_lock;        /* the snapshot prefix's lock (rank 0), or -1 */
  double last_scores[CG_MAX_TEST_NETS][CG_MAX_TEST_OUTPUTS];
  char *last_names[CG_MAX_TEST_NETS][CG_MAX_TEST_OUTPUTS];
  int last_count[CG_MAX_TEST_NETS];
};

/* Collective: stops the job, on every rank, when a rank's parsed net or solver
 * differs from rank 0's, naming the first line that differs (same_job.c). */
int cg_solver_check_same_job(cg_solver *s);

/* A rank's data positions and RNGs for every rank of the snapshotted job (.cgstate). */
typedef struct cg_run_state {
  uint64_t *words; /* ranks * per_rank */
  size_t per_rank;
  int ranks;
} cg_run_state;
/* Restores from this process's files alone: weights, history, iteration; the run
 * state (when the set has one) into *run for cg_solver_apply_run_state (snapshot.c). */
int cg_solver_restore_here(cg_solver *s, const char *state_path, cg_run_state *run);
/* This rank's slice of a snapshot's run state; `origin` names it in messages. */
int cg_solver_apply_run_state(cg_solver *s, const cg_run_state *run, const char *origin);

/* Appends one JSON object line to the metrics file (when there is one); a failed
 * write is said once, and the run goes on without metrics (metrics.c). */
void cg_solver_metrics_line(cg_solver *s, const char *json);
/* After a restore: the iterations from s->iter on will be logged again, so the
 * interrupted run's lines for them are dropped when the file is next opened. */
void cg_solver_metrics_resumed(cg_solver *s);

#endif
