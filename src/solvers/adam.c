/* Adam: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, step = lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps),
 * with t = iter + 1, b1 = momentum, b2 = momentum2, eps = delta (Caffe's AdamSolver). */
#include <math.h>

#include "solvers/update_rule.h"

void cg_update_adam(const cg_update_args *a) {
  float b1 = a->momentum, b2 = a->momentum2;
  double t = (double)a->iter + 1;
  float correction = (float)(sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t)));
  for (size_t i = 0; i < a->n; i++) {
    float g = a->diff[i];
    a->history[i] = b1 * a->history[i] + (1 - b1) * g;
    a->history2[i] = b2 * a->history2[i] + (1 - b2) * g * g;
    a->diff[i] = a->local_rate * correction * a->history[i] / (sqrtf(a->history2[i]) + a->delta);
  }
}
