/* Finding NaN and infinities in a net: diverged weights, gradients or outputs
 * (training stops on them; test and features warn). */
#include <math.h>
#include <stdio.h>

#include "core/net_impl.h"
#include "solvers/nonfinite.h"

bool cg_all_finite(const float *x, size_t n) {
  /* x * 0 is 0 for every finite x and NaN for NaN or an infinity: one sum, vectorised */
  float acc = 0.0f;
  for (size_t i = 0; i < n; i++) acc += x[i] * 0.0f;
  return acc == 0.0f;
}

size_t cg_net_nonfinite_params(const cg_net *net) {
  size_t bad = 0;
  for (size_t i = 0; i < net->param_count; i++) bad += !isfinite(net->param_data[i]);
  return bad;
}

int cg_net_first_nonfinite(const cg_net *net, bool gradients, char *what, size_t size) {
  for (int i = 0; i < cg_net_num_layers(net); i++) {
    for (int j = 0; j < cg_net_layer_num_params(net, i); j++) {
      const cg_blob *b = cg_net_layer_param(net, i, j);
      if (!cg_all_finite(b->data, b->count)) return snprintf(what, size, "its parameter blob %d", j), i;
      if (gradients && !cg_all_finite(b->diff, b->count))
        return snprintf(what, size, "the gradient of its parameter blob %d", j), i;
    }
    for (int j = 0; j < cg_net_layer_num_tops(net, i); j++) {
      const cg_blob *top = cg_net_blob_at(net, cg_net_layer_top_index(net, i, j));
      if (!cg_all_finite(top->data, top->count)) return snprintf(what, size, "its output '%s'", top->name), i;
    }
  }
  return -1;
}
