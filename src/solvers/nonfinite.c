/* Finding where training went non-finite (see nonfinite.h). */
#include "solvers/nonfinite.h"

#include <stdio.h>

#include "caffegrid/error.h"

int cg_nonfinite_error(const cg_net *net, const char *source_name, int iteration, const char *what) {
  char where[512];
  int layer = cg_net_first_nonfinite(net, true, where, sizeof where);
  char first[1024] = "";
  if (layer >= 0)
    snprintf(first, sizeof first, "; the first non-finite values are in layer '%s' (%s): %s", cg_net_layer_name(net, layer),
             cg_net_layer_type(net, layer), where);
  return cg_error(CG_ERR_NONFINITE,
                  "%s: iteration %d: %s went non-finite (NaN or infinite)%s. Training diverged: lower base_lr, clip "
                  "gradients, or check the input data; no snapshot of these weights was written",
                  source_name, iteration, what, first);
}
