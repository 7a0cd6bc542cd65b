/* The inside of a solver, shared by solver.c (the loop) and snapshot.c. */
#ifndef CG_SOLVER_IMPL_H
#define CG_SOLVER_IMPL_H

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
  int prefix_lock;        /* the snapshot prefix's lock (rank 0), or -1 */
  double last_scores[CG_MAX_TEST_NETS][CG_MAX_TEST_OUTPUTS];
  char *last_names[CG_MAX_TEST_NETS][CG_MAX_TEST_OUTPUTS];
  int last_count[CG_MAX_TEST_NETS];
};

/* Appends one JSON object line to the metrics file (when there is one). */
void cg_solver_metrics_line(cg_solver *s, const char *json);

#endif
