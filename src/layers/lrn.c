/* LRN (Caffe's LRNLayer): top = x * scale^-beta, with scale = k + alpha/size * sum of x^2
 * over `size` neighbouring channels (ACROSS_CHANNELS), or, as Caffe builds WITHIN_CHANNEL
 * from AVE pooling with pad (size-1)/2, scale = 1 + alpha/size^2 * sum over a size x size window. */
#include <math.h>
#include <stdlib.h>

#include "core/layer.h"
#include "layers/scratch.h"

static const Caffe__LRNParameter lrn_defaults = CAFFE__LRNPARAMETER__INIT;

/* Below this many input elements the layer runs on one thread: small layers gain
 * nothing, and a parallel region next to OpenBLAS's own threads can cost more than it saves. */
enum { PARALLEL_MIN_ELEMENTS = 1 << 20 };

typedef struct lrn_state {
  bool within;
  int size, pre_pad;
  float alpha, beta, k;
  int num, channels, height, width;
  float *scale, *ratio; /* per element: the base of the power; backward scratch */
  size_t scale_capacity, ratio_capacity;
} lrn_state;

static int lrn_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  const Caffe__LRNParameter *p = l->param->lrn_param ? l->param->lrn_param : &lrn_defaults;
  if (p->local_size % 2 != 1 || p->local_size > 4095)
    return cg_error(CG_ERR_INVALID, "local_size must be odd (got %u)", p->local_size);
  if (p->norm_region != CAFFE__LRNPARAMETER__NORM_REGION__ACROSS_CHANNELS &&
      p->norm_region != CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL)
    return cg_error(CG_ERR_INVALID, "unknown norm_region %d", p->norm_region);
  if (bottom[0]->num_axes != 4)
    return cg_error(CG_ERR_SHAPE, "input must have 4 axes (num, channels, height, width), has %d",
                    bottom[0]->num_axes);
  lrn_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  s->within = p->norm_region == CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL;
  s->size = (int)p->local_size;
  s->pre_pad = (s->size - 1) / 2;
  s->alpha = p->alpha;
  s->beta = p->beta;
  s->k = p->k;
  l->priv = s;
  return CG_OK;
}

static int lrn_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  lrn_state *s = l->priv;
  const cg_blob *b = bottom[0];
  if (b->num_axes != 4)
    return cg_error(CG_ERR_SHAPE, "input must have 4 axes (num, channels, height, width), has %d", b->num_axes);
  s->num = b->shape[0], s->channels = b->shape[1], s->height = b->shape[2], s->width = b->shape[3];
  int rc = cg_blob_reshape_like(top[0], b);
  if (!rc) rc = cg_scratch_floats(&s->scale, &s->scale_capacity, b->count);
  if (!rc) rc = cg_scratch_floats(&s->ratio, &s->ratio_capacity, b->count);
  return rc;
}

/* y[i] = x[i] * s[i]^-beta; beta 0.75 (the usual value) without powf. */
static void apply_power(size_t n, const float *x, const float *scale, float beta, float *y) {
  if (beta == 0.75f) {
    for (size_t i = 0; i < n; i++) {
      float r = sqrtf(scale[i]);
      y[i] = x[i] / (r * sqrtf(r));
    }
  } else {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * powf(scale[i], -beta);
  }
}

/* One image [C, HW]: scale[c] = k + alpha/size * sum over channels c-pre..c+pre of x^2. */
static void across_scale(const lrn_state *s, const float *x, float *scale) {
  int C = s->channels;
  size_t hw = (size_t)s->height * s->width;
  float alpha_over_size = s->alpha / (float)s->size;
  for (int c = 0; c < C; c++) {
    float *row = scale + c * hw;
    for (size_t i = 0; i < hw; i++) row[i] = s->k;
    int lo = c - s->pre_pad < 0 ? 0 : c - s->pre_pad, hi = c + s->pre_pad >= C ? C - 1 : c + s->pre_pad;
    for (int cc = lo; cc <= hi; cc++) {
      const float *xr = x + cc * hw;
      for (size_t i = 0; i < hw; i++) row[i] += alpha_over_size * (xr[i] * xr[i]);
    }
  }
}

/* One plane [H, W]: scale = 1 + alpha * (sum of x^2 over the clipped window) / size^2. */
static void within_scale(const lrn_state *s, const float *x, float *scale) {
  int H = s->height, W = s->width, pre = s->pre_pad;
  float pool_size = (float)(s->size * s->size);
  for (int h = 0; h < H; h++)
    for (int w = 0; w < W; w++) {
      int h0 = h - pre < 0 ? 0 : h - pre, h1 = h + pre >= H ? H - 1 : h + pre;
      int w0 = w - pre < 0 ? 0 : w - pre, w1 = w + pre >= W ? W - 1 : w + pre;
      float sum = 0;
      for (int i = h0; i <= h1; i++)
        for (int j = w0; j <= w1; j++) sum += x[i * W + j] * x[i * W + j];
      scale[h * W + w] = 1.0f + s->alpha * (sum / pool_size);
    }
}

static int lrn_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  lrn_state *s = l->priv;
  const float *x = bottom[0]->data;
  float *y = top[0]->data;
  if (!s->within) {
    size_t dim = (size_t)s->channels * s->height * s->width;
#pragma omp parallel for schedule(static) if (bottom[0]->count >= PARALLEL_MIN_ELEMENTS)
    for (int n = 0; n < s->num; n++) {
      across_scale(s, x + n * dim, s->scale + n * dim);
      apply_power(dim, x + n * dim, s->scale + n * dim, s->beta, y + n * dim);
    }
  } else {
    long planes = (long)s->num * s->channels;
    size_t dim = (size_t)s->height * s->width;
#pragma omp parallel for schedule(static) if (bottom[0]->count >= PARALLEL_MIN_ELEMENTS)
    for (long i = 0; i < planes; i++) {
      within_scale(s, x + i * dim, s->scale + i * dim);
      apply_power(dim, x + i * dim, s->scale + i * dim, s->beta, y + i * dim);
    }
  }
  return CG_OK;
}

/* bottom_diff = top_diff * scale^-beta - coeff * x * (sum over the window of top_diff * top / scale),
 * the window being symmetric, so "windows containing i" = "the window around i". */
static void lrn_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  lrn_state *s = l->priv;
  if (!propagate_down[0]) return;
  const float *x = bottom[0]->data, *y = top[0]->data, *dy = top[0]->diff;
  float *dx = bottom[0]->diff;
  int C = s->channels, H = s->height, W = s->width, pre = s->pre_pad;
  size_t count = bottom[0]->count;
  if (!s->within) {
    float coeff = 2.0f * s->alpha * s->beta / (float)s->size;
    size_t hw = (size_t)H * W, dim = (size_t)C * hw;
#pragma omp parallel for schedule(static) if (count >= PARALLEL_MIN_ELEMENTS)
    for (int n = 0; n < s->num; n++) {
      float *ratio = s->ratio + n * dim;
      for (size_t i = 0; i < dim; i++) ratio[i] = dy[n * dim + i] * y[n * dim + i] / s->scale[n * dim + i];
      apply_power(dim, dy + n * dim, s->scale + n * dim, s->beta, dx + n * dim);
      for (int c = 0; c < C; c++) {
        int lo = c - pre < 0 ? 0 : c - pre, hi = c + pre >= C ? C - 1 : c + pre;
        float *dxr = dx + n * dim + c * hw;
        const float *xr = x + n * dim + c * hw;
        for (int cc = lo; cc <= hi; cc++) {
          const float *rr = ratio + cc * hw;
          for (size_t i = 0; i < hw; i++) dxr[i] -= coeff * xr[i] * rr[i];
        }
      }
    }
  } else {
    float coeff = 2.0f * s->alpha * s->beta / (float)(s->size * s->size);
    long planes = (long)s->num * C;
    size_t dim = (size_t)H * W;
#pragma omp parallel for schedule(static) if (count >= PARALLEL_MIN_ELEMENTS)
    for (long p = 0; p < planes; p++) {
      const float *xp = x + p * dim;
      float *ratio = s->ratio + p * dim, *dxp = dx + p * dim;
      for (size_t i = 0; i < dim; i++) ratio[i] = dy[p * dim + i] * y[p * dim + i] / s->scale[p * dim + i];
      apply_power(dim, dy + p * dim, s->scale + p * dim, s->beta, dxp);
      for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++) {
          int h0 = h - pre < 0 ? 0 : h - pre, h1 = h + pre >= H ? H - 1 : h + pre;
          int w0 = w - pre < 0 ? 0 : w - pre, w1 = w + pre >= W ? W - 1 : w + pre;
          float acc = 0;
          for (int i = h0; i <= h1; i++)
            for (int j = w0; j <= w1; j++) acc += ratio[i * W + j];
          dxp[h * W + w] -= coeff * xp[h * W + w] * acc;
        }
    }
  }
}

static void lrn_destroy(cg_layer *l) {
  lrn_state *s = l->priv;
  if (!s) return;
  free(s->scale);
  free(s->ratio);
  free(s);
  l->priv = NULL;
}

const cg_layer_ops cg_layer_lrn = {
    .type = "LRN",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = lrn_setup,
    .reshape = lrn_reshape,
    .forward = lrn_forward,
    .backward = lrn_backward,
    .destroy = lrn_destroy,
};
