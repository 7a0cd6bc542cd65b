/* Split (Caffe's SplitLayer): hands one bottom to several consumers. Each top
 * gets a copy of the data; backward sums the tops' diffs into the bottom. The net
 * inserts these automatically where a blob feeds more than one layer. */
#include <string.h>

#include "core/layer.h"

enum { PAR_MIN = 1 << 15 };

static int split_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  for (int i = 0; i < l->num_tops; i++)
    CG_LAYER_CHECK(top[i] != bottom[0], CG_ERR_INVALID, "Split cannot work in place (top %d is its bottom)", i);
  return CG_OK;
}

static int split_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  for (int i = 0; i < l->num_tops; i++) {
    int rc = cg_blob_reshape_like(top[i], bottom[0]);
    if (rc) return rc;
  }
  return CG_OK;
}

static int split_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  for (int i = 0; i < l->num_tops; i++) memcpy(top[i]->data, bottom[0]->data, bottom[0]->count * sizeof(float));
  return CG_OK;
}

static void split_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  size_t n = bottom[0]->count;
  float *dx = bottom[0]->diff;
  int nt = l->num_tops;
  /* summed in top order, ((t0 + t1) + t2) + ..., as Caffe does */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float s = top[0]->diff[i];
    for (int t = 1; t < nt; t++) s += top[t]->diff[i];
    dx[i] = s;
  }
}

const cg_layer_ops cg_layer_split = {.type = "Split",
                                     .min_bottoms = 1,
                                     .max_bottoms = 1,
                                     .min_tops = 1,
                                     .max_tops = -1,
                                     .setup = split_setup,
                                     .reshape = split_reshape,
                                     .forward = split_forward,
                                     .backward = split_backward};
