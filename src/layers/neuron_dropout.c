/* Dropout (Caffe's DropoutLayer): in TRAIN each element survives with probability
 * 1 - ratio and is scaled by 1 / (1 - ratio); in TEST it is the identity. The mask
 * comes from the layer's own RNG and is kept for backward, so it works in place. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

enum { PAR_MIN = 1 << 15 };

typedef struct dropout_priv {
  float ratio, scale;
  uint8_t *mask; /* 1: kept */
  size_t mask_cap;
} dropout_priv;

static void dropout_destroy(cg_layer *l) {
  dropout_priv *p = l->priv;
  if (!p) return;
  free(p->mask);
  free(p);
  l->priv = NULL;
}

static int dropout_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  float ratio = l->param->dropout_param ? l->param->dropout_param->dropout_ratio : 0.5f;
  CG_LAYER_CHECK(ratio >= 0 && ratio < 1, CG_ERR_INVALID, "dropout_ratio must be in [0, 1), got %g", (double)ratio);
  dropout_priv *p = calloc(1, sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = p;
  p->ratio = ratio;
  p->scale = (float)(1.0 / (1.0 - (double)ratio)); /* in double, as Caffe computes it */
  return CG_OK;
}

static int dropout_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  dropout_priv *p = l->priv;
  if (top[0] != bottom[0]) {
    int rc = cg_blob_reshape_like(top[0], bottom[0]);
    if (rc) return rc;
  }
  size_t n = bottom[0]->count;
  if (n > p->mask_cap || !p->mask) {
    uint8_t *m = malloc(n ? n : 1);
    if (!m) return cg_error(CG_ERR_NOMEM, "cannot allocate a dropout mask of %zu elements", n);
    free(p->mask);
    p->mask = m;
    p->mask_cap = n;
  }
  return CG_OK;
}

static int dropout_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  dropout_priv *p = l->priv;
  const float *x = bottom[0]->data;
  float *y = top[0]->data;
  size_t n = bottom[0]->count;
  if (l->phase != CG_TRAIN) {
    if (y != x) memcpy(y, x, n * sizeof(float));
    return CG_OK;
  }
  /* The mask is drawn in order from one stream: same seed, same mask. */
  double keep = 1.0 - (double)p->ratio;
  uint8_t *mask = p->mask;
  for (size_t i = 0; i < n; i++) mask[i] = cg_rng_uniform01(&l->rng) < keep;
  float scale = p->scale;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) y[i] = x[i] * (float)mask[i] * scale;
  return CG_OK;
}

static void dropout_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  const dropout_priv *p = l->priv;
  const float *dy = top[0]->diff;
  float *dx = bottom[0]->diff;
  size_t n = bottom[0]->count;
  if (l->phase != CG_TRAIN) {
    if (dx != dy) memcpy(dx, dy, n * sizeof(float));
    return;
  }
  const uint8_t *mask = p->mask;
  float scale = p->scale;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (float)mask[i] * scale;
}

const cg_layer_ops cg_layer_dropout = {.type = "Dropout",
                                       .min_bottoms = 1,
                                       .max_bottoms = 1,
                                       .min_tops = 1,
                                       .max_tops = 1,
                                       .setup = dropout_setup,
                                       .reshape = dropout_reshape,
                                       .forward = dropout_forward,
                                       .backward = dropout_backward,
                                       .destroy = dropout_destroy};
