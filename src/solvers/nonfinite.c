/* Finding where training went non-finite (see nonfinite.h). */
#include "solvers/nonfinite.h"

#include <stdio.h>

#include "caffegrid/error.h"

bool cg_all_finite(const float *x, size_t n) {
  /* x * 0 is 0 for every finite x and NaN for NaN or an infinity: one sum, vectorised */
  float acc = 0.0f;
  for (size_t i = 0; i < n; i++) acc += x[i] * 0.0f;
  return acc == 0.0f;
}

/* The first layer, in forward order, with a non-finite output, weight or gradient. */
static int first_bad_layer(const cg_net *net, char *what, size_t size) {
  for (int i = 0; i < cg_net_num_layers(net); i++) {
    for (int j = 0; j < cg_net_layer_num_params(net, i); j++) {
      const cg_blob *b = cg_net_layer_param(net, i, j);
      if (!cg_all_finite(b->data, b->count)) return snprintf(what, size, "its parameter blob %d", j), i;
      if (!cg_all_finite(b->diff, b->count)) return snprintf(what, size, "the gradient of its parameter blob %d", j), i;
    }
    for (int j = 0; j < cg_net_layer_num_tops(net, i); j++) {
      const cg_blob *top = cg_net_blob_at(net, cg_net_layer_top_index(net, i, j));
      if (!cg_all_finite(top->data, top->count)) return snprintf(what, size, "its output '%s'", top->name), i;
    }
  }
  return -1;
}

int cg_nonfinite_error(const cg_net *net, const char *source_name, int iteration, const char *what) {
  char where[512];
  int layer = first_bad_layer(net, where, sizeof where);
  char first[1024] = "";
  if (layer >= 0)
    snprintf(first, sizeof first, "; the first non-finite values are in layer '%s' (%s): %s", cg_net_layer_name(net, layer),
             cg_net_layer_type(net, layer), where);
  return cg_error(CG_ERR_NONFINITE,
                  "%s: iteration %d: %s went non-finite (NaN or infinite)%s. Training diverged: lower base_lr, clip "
                  "gradients, or check the input data; no snapshot of these weights was written",
                  source_name, iteration, what, first);
}
