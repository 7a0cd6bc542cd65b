/* RMSProp: history = rms_decay * history + (1 - rms_decay) * g^2; step = lr * g / (sqrt(history) + delta). */
#include <math.h>

#include "solvers/update_rule.h"

void cg_update_rmsprop(const cg_update_args *a) {
  for (size_t i = 0; i < a->n; i++) {
    float g = a->diff[i];
    a->history[i] = a->rms_decay * a->history[i] + (1 - a->rms_decay) * g * g;
    a->diff[i] = a->local_rate * g / (sqrtf(a->history[i]) + a->delta);
  }
}
