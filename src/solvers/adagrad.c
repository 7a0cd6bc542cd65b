/* AdaGrad: history accumulates g^2; step = lr * g / (sqrt(history) + delta). */
#include <math.h>

#include "solvers/update_rule.h"

void cg_update_adagrad(const cg_update_args *a) {
  for (size_t i = 0; i < a->n; i++) {
    float g = a->diff[i];
    a->history[i] += g * g;
    a->diff[i] = a->local_rate * g / (sqrtf(a->history[i]) + a->delta);
  }
}
