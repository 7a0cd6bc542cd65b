/* AdaDelta (Caffe's form, with a learning rate): history = decayed mean of g^2,
 * history2 = decayed mean of squared steps; step = lr * g * sqrt((h2 + delta) / (h + delta)). */
#include <math.h>

#include "solvers/update_rule.h"

void cg_update_adadelta(const cg_update_args *a) {
  float m = a->momentum;
  for (size_t i = 0; i < a->n; i++) {
    float g = a->diff[i];
    a->history[i] = m * a->history[i] + (1 - m) * g * g;
    float step = g * sqrtf((a->history2[i] + a->delta) / (a->history[i] + a->delta));
    a->history2[i] = m * a->history2[i] + (1 - m) * step * step;
    a->diff[i] = a->local_rate * step;
  }
}
