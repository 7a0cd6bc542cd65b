/* caffegrid train: run a solver, with Caffe's flags (-solver, -weights, -snapshot,
 * -iterations) and CaffeOnSpark's spelling (-train -conf S -model OUT). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "caffegrid/solver.h"
#include "commands.h"
#include "flags.h"

int cmd_train(int argc, char **argv) {
  cg_flag flags[] = {
      {"solver", NULL, false, "the solver prototxt"},
      {"conf", NULL, false, "CaffeOnSpark's name for -solver"},
      {"weights", NULL, false, "fine-tune from these .caffemodel files (comma-separated)"},
      {"snapshot", NULL, false, "resume from this .solverstate"},
      {"iterations", NULL, false, "train to this iteration instead of the solver's max_iter"},
      {"model", NULL, false, "CaffeOnSpark's -model: write the final weights to this file"},
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
  long iterations;
  if (!cg_flag_int(flags, "iterations", 0, &iterations)) return 1;
  if (!solver_path) {
    fprintf(stderr, "caffegrid train: -solver is required (a solver .prototxt)\n");
    return 1;
  }
  if (cg_flag_get(flags, "gpu")) {
    fprintf(stderr, "caffegrid train: -gpu was given but this build has no GPU support; run without -gpu for the CPU\n");
    return 1;
  }
  const char *weights = cg_flag_get(flags, "weights"), *snapshot = cg_flag_get(flags, "snapshot");
  if (weights && snapshot) {
    fprintf(stderr, "caffegrid train: give -weights (fine-tune) or -snapshot (resume), not both\n");
    return 1;
  }
  cg_solver_options opt = {.world_size = 1, .max_iter = iterations, .final_model = cg_flag_get(flags, "model"),
                           .progress = isatty(2) != 0};
  CG_LOG_INFO("Use CPU.");
  cg_solver *s = NULL;
  int rc = cg_solver_create_from_file(solver_path, &opt, &s);
  if (!rc && weights) rc = cg_solver_load_weights(s, weights);
  if (!rc && snapshot) {
    CG_LOG_INFO("Resuming from %s", snapshot);
    rc = cg_solver_restore(s, snapshot);
  }
  if (!rc) rc = cg_solver_solve(s);
  if (rc) fprintf(stderr, "caffegrid train: %s\n", cg_error_message());
  cg_solver_free(s);
  return rc ? 1 : 0;
}
