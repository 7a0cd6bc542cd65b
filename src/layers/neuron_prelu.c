/* PReLU: y = max(x, 0) + a_c min(x, 0) with a learned slope per channel (or one
 * shared slope), Caffe's PReLULayer. Works in place by keeping a copy of the input. */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "layers/scratch.h"

enum { PAR_MIN = 1 << 15 };

typedef struct prelu_priv {
  bool channel_shared;
  int channels;
  float *saved; /* the input, saved by an in-place forward */
  size_t saved_cap;
  double *sums; /* [channels] slope gradients before they are added */
} prelu_priv;

static void prelu_destroy(cg_layer *l) {
  prelu_priv *p = l->priv;
  if (!p) return;
  free(p->saved);
  free(p->sums);
  free(p);
  l->priv = NULL;
}

static int prelu_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  CG_LAYER_CHECK(bottom[0]->num_axes >= 2, CG_ERR_SHAPE, "bottom must have at least 2 axes, has %d",
                 bottom[0]->num_axes);
  const Caffe__PReLUParameter *pp = l->param->prelu_param;
  prelu_priv *p = calloc(1, sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = p;
  p->channel_shared = pp && pp->channel_shared;
  p->channels = bottom[0]->shape[1];
  cg_filler filler = cg_filler_constant(0.25f);
  if (pp && pp->filler) {
    int rc = cg_filler_from_param(pp->filler, &filler);
    if (rc) return rc;
  }
  /* As Caffe: a shared slope is a scalar blob (no axes), otherwise one per channel. */
  int shape[1] = {p->channels};
  if (!cg_layer_add_param(l, p->channel_shared ? 0 : 1, shape, filler)) return CG_ERR_INVALID;
  p->sums = calloc(p->channels ? (size_t)p->channels : 1, sizeof *p->sums);
  if (!p->sums) return cg_error(CG_ERR_NOMEM, "out of memory");
  return CG_OK;
}

static int prelu_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  prelu_priv *p = l->priv;
  CG_LAYER_CHECK(bottom[0]->num_axes >= 2 && bottom[0]->shape[1] == p->channels, CG_ERR_SHAPE,
                 "bottom must keep %d channels on axis 1", p->channels);
  if (top[0] != bottom[0]) return cg_blob_reshape_like(top[0], bottom[0]);
  return cg_scratch_floats(&p->saved, &p->saved_cap, bottom[0]->count);
}

static int prelu_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  prelu_priv *p = l->priv;
  const float *x = bottom[0]->data, *slope = l->params[0]->data;
  float *y = top[0]->data;
  size_t n = bottom[0]->count, dim = cg_blob_count_from(bottom[0], 2), channels = (size_t)p->channels;
  if (top[0] == bottom[0]) memcpy(p->saved, x, n * sizeof(float));
  bool shared = p->channel_shared;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float a = slope[shared ? 0 : (i / dim) % channels];
    y[i] = (x[i] < 0 ? 0.0f : x[i]) + a * (0 < x[i] ? 0.0f : x[i]); /* std::max/min: NaN stays NaN */
  }
  return CG_OK;
}

static void prelu_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  prelu_priv *p = l->priv;
  const float *x = top[0] == bottom[0] ? p->saved : bottom[0]->data, *dy = top[0]->diff;
  const float *slope = l->params[0]->data;
  size_t n = bottom[0]->count, dim = cg_blob_count_from(bottom[0], 2), channels = (size_t)p->channels;
  size_t num = dim && channels ? n / (dim * channels) : 0;
  /* Slope gradient first: in place, bottom diff and top diff are the same memory.
   * One channel per thread, each summed in a fixed order, so the result is deterministic. */
  double *sums = p->sums;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t c = 0; c < channels; c++) {
    double s = 0;
    for (size_t k = 0; k < num; k++) {
      size_t base = (k * channels + c) * dim;
      for (size_t j = 0; j < dim; j++)
        if (x[base + j] <= 0) s += (double)dy[base + j] * x[base + j];
    }
    sums[c] = s;
  }
  float *dslope = l->params[0]->diff;
  if (p->channel_shared) {
    double s = 0;
    for (size_t c = 0; c < channels; c++) s += sums[c];
    dslope[0] += (float)s;
  } else {
    for (size_t c = 0; c < channels; c++) dslope[c] += (float)sums[c];
  }
  if (!propagate_down[0]) return;
  float *dx = bottom[0]->diff;
  bool shared = p->channel_shared;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float a = slope[shared ? 0 : (i / dim) % channels];
    dx[i] = dy[i] * (x[i] > 0 ? 1.0f : a);
  }
}

const cg_layer_ops cg_layer_prelu = {.type = "PReLU",
                                     .min_bottoms = 1,
                                     .max_bottoms = 1,
                                     .min_tops = 1,
                                     .max_tops = 1,
                                     .setup = prelu_setup,
                                     .reshape = prelu_reshape,
                                     .forward = prelu_forward,
                                     .backward = prelu_backward,
                                     .destroy = prelu_destroy};
