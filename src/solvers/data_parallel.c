/* Bucketed, overlapped gradient allreduce. Learnable parameters sit in the flat
 * gradient array in forward layer order, so reverse-order buckets are contiguous
 * ranges counted from the end; a bucket is ready once backward has passed the
 * first layer owning any of its parameters. */
#include "solvers/data_parallel.h"

#include <stdlib.h>

#include "caffegrid/error.h"

typedef struct bucket {
  size_t start, end; /* range of the flat gradient array */
  int ready_layer;   /* started once backward has finished this layer */
} bucket;

struct cg_data_parallel {
  cg_comm *comm;
  cg_net *net;
  cg_comm_async *async;
  bucket *buckets; /* in launch order: the last parameters first */
  int num_buckets, next;
  int world;
};

static void on_layer_done(int layer_index, void *user) {
  cg_data_parallel *dp = user;
  float *diff = cg_net_param_diff(dp->net);
  while (dp->next < dp->num_buckets && dp->buckets[dp->next].ready_layer >= layer_index) {
    bucket *b = &dp->buckets[dp->next++];
    cg_comm_async_start(dp->async, diff + b->start, b->end - b->start);
  }
}

int cg_dp_create(cg_comm *comm, cg_net *net, size_t bucket_bytes, cg_data_parallel **out) {
  *out = NULL;
  cg_data_parallel *dp = calloc(1, sizeof *dp);
  if (!dp) return cg_error(CG_ERR_NOMEM, "out of memory");
  dp->comm = comm;
  dp->net = net;
  dp->world = cg_comm_size(comm);
  size_t bucket_floats = (bucket_bytes ? bucket_bytes : (size_t)4 << 20) / sizeof(float);
  int n = cg_net_num_learnable(net);
  dp->buckets = calloc((size_t)n + 1, sizeof *dp->buckets);
  size_t end = cg_net_param_count(net);
  for (int i = n - 1; i >= 0; i--) {
    size_t start = cg_net_learnable_offset(net, i);
    bool open = dp->num_buckets > 0 && dp->buckets[dp->num_buckets - 1].end - start <= bucket_floats &&
                dp->buckets[dp->num_buckets - 1].start == end;
    if (!open) {
      dp->buckets[dp->num_buckets++] = (bucket){.start = start, .end = end};
    }
    bucket *b = &dp->buckets[dp->num_buckets - 1];
    b->start = start;
    b->ready_layer = cg_net_learnable_first_layer(net, i);
    end = start;
  }
  int rc = cg_comm_async_create(comm, &dp->async);
  if (rc) {
    free(dp->buckets);
    free(dp);
    return rc;
  }
  *out = dp;
  return CG_OK;
}

void cg_dp_free(cg_data_parallel *dp) {
  if (!dp) return;
  cg_net_set_backward_hook(dp->net, NULL, NULL);
  cg_comm_async_free(dp->async);
  free(dp->buckets);
  free(dp);
}

int cg_dp_broadcast_weights(cg_data_parallel *dp, float *extra, size_t extra_count) {
  int rc = cg_comm_broadcast(dp->comm, cg_net_param_data(dp->net), cg_net_param_count(dp->net) * sizeof(float), 0);
  if (!rc && extra && extra_count) rc = cg_comm_broadcast(dp->comm, extra, extra_count * sizeof(float), 0);
  return rc;
}

void cg_dp_arm(cg_data_parallel *dp) {
  dp->next = 0;
  cg_net_set_backward_hook(dp->net, on_layer_done, dp);
}

int cg_dp_finish(cg_data_parallel *dp) {
  /* buckets whose layers never ran backward (frozen layers) go out now */
  on_layer_done(-1, dp);
  cg_net_set_backward_hook(dp->net, NULL, NULL);
  int rc = cg_comm_async_wait_all(dp->async);
  if (rc) return rc;
  float *diff = cg_net_param_diff(dp->net), scale = 1.0f / (float)dp->world;
  size_t n = cg_net_param_count(dp->net);
  for (size_t i = 0; i < n; i++) diff[i] *= scale;
  return CG_OK;
}

int cg_dp_mean(cg_data_parallel *dp, float *value) {
  int rc = cg_comm_allreduce_sum(dp->comm, value, 1);
  *value /= (float)dp->world;
  return rc;
}

int cg_dp_check_consistency(cg_data_parallel *dp, int iter) {
  const float *w = cg_net_param_data(dp->net);
  double sum = 0, weighted = 0;
  size_t n = cg_net_param_count(dp->net);
  for (size_t i = 0; i < n; i++) sum += w[i], weighted += w[i] * (double)(i % 1021 + 1);
  double v[4] = {sum, -sum, weighted, -weighted};
  int rc = cg_comm_allreduce_max(dp->comm, v, 4);
  if (rc) return rc;
  if (v[0] != -v[1] || v[2] != -v[3])
    return cg_error(CG_ERR_COMM,
                    "the weights differ across ranks at iteration %d (checksums range from %.17g to %.17g): ranks "
                    "diverged; stopping",
                    iter, -v[1], v[0]);
  return CG_OK;
}

int cg_dp_num_buckets(const cg_data_parallel *dp) { return dp->num_buckets; }
double cg_dp_exposed_comm_seconds(const cg_data_parallel *dp) { return cg_comm_async_wait_seconds(dp->async); }
