/* SGD with momentum (Caffe's SGDSolver): history = lr * g + momentum * history; step = history. */
#include "solvers/update_rule.h"

void cg_update_sgd(const cg_update_args *a) {
  for (size_t i = 0; i < a->n; i++) {
    a->history[i] = a->local_rate * a->diff[i] + a->momentum * a->history[i];
    a->diff[i] = a->history[i];
  }
}
