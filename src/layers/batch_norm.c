/* BatchNorm (Caffe's BatchNormLayer): normalises each channel to zero mean and
 * unit variance, with batch statistics in training and stored ones otherwise.
 * Caffe's three blobs: running mean sum, running variance sum, and their scale factor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "layers/scratch.h"

typedef struct bn_priv {
  bool use_global_stats;
  float moving_average_fraction, eps;
  int channels;
  size_t num, spatial; /* bottom seen as [num, channels, spatial] */
  float *mean, *std;   /* [channels]: the statistics this forward used; std = sqrt(var + eps) */
  float *x_norm;       /* the normalised output, kept for backward (a later in-place layer may overwrite top) */
  size_t x_norm_cap;
} bn_priv;

static void bn_destroy(cg_layer *l) {
  bn_priv *p = l->priv;
  if (!p) return;
  free(p->mean);
  free(p->std);
  free(p->x_norm);
  free(p);
  l->priv = NULL;
}

static int bn_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  static const Caffe__BatchNormParameter defaults = CAFFE__BATCH_NORM_PARAMETER__INIT;
  const Caffe__BatchNormParameter *bp = l->param->batch_norm_param ? l->param->batch_norm_param : &defaults;
  CG_LAYER_CHECK(bottom[0]->num_axes >= 1, CG_ERR_SHAPE, "bottom needs at least one axis");
  bn_priv *p = calloc(1, sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = p;
  p->use_global_stats = bp->has_use_global_stats ? bp->use_global_stats : l->phase == CG_TEST;
  p->moving_average_fraction = bp->moving_average_fraction;
  p->eps = bp->eps;
  p->channels = bottom[0]->num_axes == 1 ? 1 : bottom[0]->shape[1];
  size_t c = p->channels ? (size_t)p->channels : 1;
  p->mean = calloc(c, sizeof(float));
  p->std = calloc(c, sizeof(float));
  if (!p->mean || !p->std) return cg_error(CG_ERR_NOMEM, "out of memory");
  /* mean sum [C], variance sum [C], scale factor [1]; the net keeps their learning rate at 0 */
  int shape_c[1] = {p->channels}, shape_1[1] = {1};
  if (!cg_layer_add_param(l, 1, shape_c, cg_filler_constant(0)) ||
      !cg_layer_add_param(l, 1, shape_c, cg_filler_constant(0)) ||
      !cg_layer_add_param(l, 1, shape_1, cg_filler_constant(0)))
    return CG_ERR_INVALID;
  return CG_OK;
}

static int bn_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  bn_priv *p = l->priv;
  const cg_blob *b = bottom[0];
  int channels = b->num_axes == 1 ? 1 : b->shape[1];
  CG_LAYER_CHECK(channels == p->channels, CG_ERR_SHAPE, "bottom has %d channels, the layer was set up for %d", channels,
                 p->channels);
  CG_LAYER_CHECK(b->num_axes >= 1 && b->shape[0] > 0, CG_ERR_SHAPE, "bottom needs a non-empty batch axis");
  p->num = (size_t)b->shape[0];
  p->spatial = p->channels ? b->count / (p->num * (size_t)p->channels) : 0;
  if (top[0] != bottom[0]) {
    int rc = cg_blob_reshape_like(top[0], bottom[0]);
    if (rc) return rc;
  }
  return cg_scratch_floats(&p->x_norm, &p->x_norm_cap, b->count);
}

static int bn_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  bn_priv *p = l->priv;
  const float *x = bottom[0]->data;
  float *y = top[0]->data, *xn = p->x_norm;
  size_t C = (size_t)p->channels, N = p->num, S = p->spatial, m = N * S;
  float *run_mean = l->params[0]->data, *run_var = l->params[1]->data, *factor = l->params[2]->data;
  if (p->use_global_stats) {
    float f = factor[0] == 0 ? 0.0f : 1.0f / factor[0];
    for (size_t c = 0; c < C; c++) {
      p->mean[c] = run_mean[c] * f;
      p->std[c] = sqrtf(run_var[c] * f + p->eps);
    }
  } else {
    /* one channel per thread; each channel's sums run in a fixed order */
#pragma omp parallel for schedule(static) if (bottom[0]->count >= (1 << 15))
    for (size_t c = 0; c < C; c++) {
      double s = 0;
      for (size_t n = 0; n < N; n++)
        for (size_t i = 0; i < S; i++) s += x[(n * C + c) * S + i];
      float mean = (float)(s / (double)m);
      double v = 0;
      for (size_t n = 0; n < N; n++)
        for (size_t i = 0; i < S; i++) {
          float d = x[(n * C + c) * S + i] - mean;
          v += (double)d * d;
        }
      p->mean[c] = mean;
      p->std[c] = (float)(v / (double)m); /* the biased variance, for now */
    }
    /* Running sums as Caffe keeps them: scaled by the fraction, plus this batch;
     * the variance with the unbiased correction m / (m - 1). */
    float maf = p->moving_average_fraction;
    float correction = m > 1 ? (float)m / (float)(m - 1) : 1.0f;
    factor[0] = factor[0] * maf + 1.0f;
    for (size_t c = 0; c < C; c++) {
      run_mean[c] = p->mean[c] + maf * run_mean[c];
      run_var[c] = correction * p->std[c] + maf * run_var[c];
      p->std[c] = sqrtf(p->std[c] + p->eps);
    }
  }
  const float *mean = p->mean, *std = p->std;
#pragma omp parallel for schedule(static) if (bottom[0]->count >= (1 << 15))
  for (size_t r = 0; r < N * C; r++) {
    size_t c = r % C;
    for (size_t i = 0; i < S; i++) {
      float v = (x[r * S + i] - mean[c]) / std[c];
      xn[r * S + i] = v;
      y[r * S + i] = v;
    }
  }
  return CG_OK;
}

static void bn_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  bn_priv *p = l->priv;
  const float *dy = top[0]->diff, *xn = p->x_norm, *std = p->std;
  float *dx = bottom[0]->diff; /* may be dy itself when in place: each element is read before it is written */
  size_t C = (size_t)p->channels, N = p->num, S = p->spatial, m = N * S;
  if (p->use_global_stats) {
#pragma omp parallel for schedule(static) if (bottom[0]->count >= (1 << 15))
    for (size_t r = 0; r < N * C; r++)
      for (size_t i = 0; i < S; i++) dx[r * S + i] = dy[r * S + i] / std[r % C];
    return;
  }
  /* With y = (x - mean) / std:  dx = (dy - mean(dy) - mean(dy * y) * y) / std, per channel. */
#pragma omp parallel for schedule(static) if (bottom[0]->count >= (1 << 15))
  for (size_t c = 0; c < C; c++) {
    double sum_dy = 0, sum_dy_y = 0;
    for (size_t n = 0; n < N; n++)
      for (size_t i = 0; i < S; i++) {
        size_t k = (n * C + c) * S + i;
        sum_dy += dy[k];
        sum_dy_y += (double)dy[k] * xn[k];
      }
    float mean_dy = (float)(sum_dy / (double)m), mean_dy_y = (float)(sum_dy_y / (double)m);
    for (size_t n = 0; n < N; n++)
      for (size_t i = 0; i < S; i++) {
        size_t k = (n * C + c) * S + i;
        dx[k] = (dy[k] - mean_dy - mean_dy_y * xn[k]) / std[c];
      }
  }
}

const cg_layer_ops cg_layer_batch_norm = {.type = "BatchNorm",
                                          .min_bottoms = 1,
                                          .max_bottoms = 1,
                                          .min_tops = 1,
                                          .max_tops = 1,
                                          .setup = bn_setup,
                                          .reshape = bn_reshape,
                                          .forward = bn_forward,
                                          .backward = bn_backward,
                                          .destroy = bn_destroy};
