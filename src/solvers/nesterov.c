/* Nesterov's accelerated gradient as Caffe writes it:
 * h' = momentum * h + lr * g; step = (1 + momentum) * h' - momentum * h. */
#include "solvers/update_rule.h"

void cg_update_nesterov(const cg_update_args *a) {
  for (size_t i = 0; i < a->n; i++) {
    float previous = a->history[i];
    a->history[i] = a->momentum * previous + a->local_rate * a->diff[i];
    a->diff[i] = (1 + a->momentum) * a->history[i] - a->momentum * previous;
  }
}
