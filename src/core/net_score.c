/* Caffe's scoring loop, shared by the solver's test phase and `caffegrid test`
 * (see cg_net_score in caffegrid/net.h). */
#include <stdlib.h>

#include "caffegrid/comm.h"
#include "caffegrid/error.h"
#include "caffegrid/net.h"

size_t cg_net_num_output_values(const cg_net *net) {
  size_t total = 0;
  for (int j = 0; j < cg_net_num_outputs(net); j++) total += cg_net_output(net, j)->count;
  return total;
}

int cg_net_score(cg_net *net, int iterations, cg_comm *comm, double *means, double *loss, cg_batch_fn after_batch,
                 void *user) {
  size_t total = cg_net_num_output_values(net);
  for (size_t k = 0; k < total; k++) means[k] = 0;
  double loss_sum = 0;
  for (int it = 0; it < iterations; it++) {
    float batch_loss;
    int rc = cg_net_forward(net, &batch_loss);
    if (rc) return rc;
    loss_sum += batch_loss;
    size_t idx = 0;
    for (int j = 0; j < cg_net_num_outputs(net); j++) {
      const cg_blob *b = cg_net_output(net, j);
      for (size_t k = 0; k < b->count; k++) means[idx++] += b->data[k];
    }
    if (after_batch) after_batch(net, it, user);
  }
  for (size_t k = 0; k < total; k++) means[k] /= iterations;
  double mean_loss = iterations > 0 ? loss_sum / iterations : 0;
  int world = comm ? cg_comm_size(comm) : 1;
  if (world > 1) { /* each rank scored its own share: the means, averaged (in float, as exchanged) */
    float *shared = malloc((total + 1) * sizeof *shared);
    if (!shared) return cg_error(CG_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < total; k++) shared[k] = (float)means[k];
    shared[total] = (float)mean_loss;
    int rc = cg_comm_allreduce_sum(comm, shared, total + 1);
    for (size_t k = 0; k <= total; k++) shared[k] /= (float)world;
    for (size_t k = 0; k < total; k++) means[k] = shared[k];
    mean_loss = shared[total];
    free(shared);
    if (rc) return rc;
  }
  if (loss) *loss = mean_loss;
  return CG_OK;
}
