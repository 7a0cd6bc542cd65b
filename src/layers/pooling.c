/* Pooling (Caffe's PoolingLayer): MAX with an argmax mask (first maximum wins;
 * optional second top holds the mask) and AVE, Caffe's CEIL/FLOOR output size and
 * its padding rules, global pooling. STOCHASTIC is not supported. */
#include <float.h>
#include <limits.h>
#include <string.h>

#include "core/layer.h"
#include "layers/pooling.h"
#include "layers/scratch.h"

#define POOL_MAX CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX
#define POOL_AVE CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE

static const Caffe__PoolingParameter pool_defaults = CAFFE__POOLING_PARAMETER__INIT;

/* Below this many input elements the layer runs on one thread: the parallel region
 * would cost more than it saves (LeNet's pool1, 737K elements, went 0.29 -> 0.13 ms
 * on two threads; the bound was 1M while OpenBLAS's own threads competed). */
enum { PARALLEL_MIN_ELEMENTS = 1 << 15 };

typedef struct pool_state {
  int method;
  bool global, ceil_mode;
  int kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w;
  int num, channels, height, width, pooled_h, pooled_w;
  int *mask; /* MAX: index of the maximum within its input plane, -1 for an empty window */
  size_t mask_capacity;
} pool_state;

static const Caffe__PoolingParameter *pool_param(const cg_layer *l) {
  return l->param->pooling_param ? l->param->pooling_param : &pool_defaults;
}

static int pool_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  const Caffe__PoolingParameter *p = pool_param(l);
  if (p->pool == CAFFE__POOLING_PARAMETER__POOL_METHOD__STOCHASTIC)
    return cg_error(CG_ERR_UNSUPPORTED, "STOCHASTIC pooling is not supported (use MAX or AVE)");
  if (p->pool != POOL_MAX && p->pool != POOL_AVE) return cg_error(CG_ERR_INVALID, "unknown pooling method %d", p->pool);
  if (l->num_tops > 1 && p->pool != POOL_MAX)
    return cg_error(CG_ERR_INVALID, "a second top (the argmax mask) is only produced by MAX pooling");
  if (bottom[0]->num_axes != 4)
    return cg_error(CG_ERR_SHAPE, "input must have 4 axes (num, channels, height, width), has %d",
                    bottom[0]->num_axes);
  pool_state st = {.method = p->pool, .global = p->global_pooling,
                   .ceil_mode = p->round_mode == CAFFE__POOLING_PARAMETER__ROUND_MODE__CEIL};
  if (p->round_mode != CAFFE__POOLING_PARAMETER__ROUND_MODE__CEIL &&
      p->round_mode != CAFFE__POOLING_PARAMETER__ROUND_MODE__FLOOR)
    return cg_error(CG_ERR_INVALID, "unknown round_mode %d", p->round_mode);
  if (st.global) {
    if (p->has_kernel_size || p->has_kernel_h || p->has_kernel_w)
      return cg_error(CG_ERR_INVALID, "with global_pooling the kernel size cannot be given");
    st.kernel_h = bottom[0]->shape[2];
    st.kernel_w = bottom[0]->shape[3];
  } else {
    if (p->has_kernel_size && p->has_kernel_h && p->has_kernel_w)
      return cg_error(CG_ERR_INVALID, "give kernel_size or kernel_h and kernel_w, not both");
    if (!p->has_kernel_size && !(p->has_kernel_h && p->has_kernel_w))
      return cg_error(CG_ERR_INVALID, "kernel_size (or both kernel_h and kernel_w) is required");
    st.kernel_h = (int)(p->has_kernel_size ? p->kernel_size : p->kernel_h);
    st.kernel_w = (int)(p->has_kernel_size ? p->kernel_size : p->kernel_w);
  }
  if (!((!p->has_pad && p->has_pad_h && p->has_pad_w) || (!p->has_pad_h && !p->has_pad_w)))
    return cg_error(CG_ERR_INVALID, "give pad or both pad_h and pad_w");
  if (!((!p->has_stride && p->has_stride_h && p->has_stride_w) || (!p->has_stride_h && !p->has_stride_w)))
    return cg_error(CG_ERR_INVALID, "give stride or both stride_h and stride_w");
  st.pad_h = (int)(p->has_pad_h ? p->pad_h : p->pad);
  st.pad_w = (int)(p->has_pad_h ? p->pad_w : p->pad);
  st.stride_h = (int)(p->has_stride_h ? p->stride_h : p->stride);
  st.stride_w = (int)(p->has_stride_h ? p->stride_w : p->stride);
  if (st.kernel_h <= 0 || st.kernel_w <= 0 || st.kernel_h > (1 << 24) || st.kernel_w > (1 << 24))
    return cg_error(CG_ERR_INVALID, "kernel size must be positive (got %d x %d)", st.kernel_h, st.kernel_w);
  if (st.stride_h <= 0 || st.stride_w <= 0 || st.stride_h > (1 << 24) || st.stride_w > (1 << 24))
    return cg_error(CG_ERR_INVALID, "stride must be positive (got %d x %d)", st.stride_h, st.stride_w);
  if (st.global && (st.pad_h || st.pad_w || st.stride_h != 1 || st.stride_w != 1))
    return cg_error(CG_ERR_INVALID, "with global_pooling only pad 0 and stride 1 are allowed");
  if (st.pad_h < 0 || st.pad_w < 0 || ((st.pad_h || st.pad_w) && (st.pad_h >= st.kernel_h || st.pad_w >= st.kernel_w)))
    return cg_error(CG_ERR_INVALID, "pad (%d x %d) must be smaller than the kernel (%d x %d)", st.pad_h, st.pad_w,
                    st.kernel_h, st.kernel_w);
  pool_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  *s = st;
  l->priv = s;
  return CG_OK;
}

/* Caffe's rounding of (n / stride), n possibly negative, done exactly in integers. */
static long long div_round(long long n, long long stride, bool ceil_mode) {
  if (ceil_mode) return n >= 0 ? (n + stride - 1) / stride : -((-n) / stride);
  return n >= 0 ? n / stride : -((-n + stride - 1) / stride);
}

static int pooled_size(const pool_state *s, int in, int kernel, int pad, int stride, const char *axis, int *out) {
  long long pooled = div_round((long long)in + 2LL * pad - kernel, stride, s->ceil_mode) + 1;
  /* With padding, the last window must start inside the image (or its left padding). */
  if (pad && (pooled - 1) * stride >= (long long)in + pad) --pooled;
  if (pooled <= 0 || (pad && (pooled - 1) * stride >= (long long)in + pad))
    return cg_error(CG_ERR_SHAPE, "pooled %s would be %lld (input %d, kernel %d, pad %d, stride %d)", axis, pooled, in,
                    kernel, pad, stride);
  *out = (int)pooled;
  return CG_OK;
}

static int pool_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  pool_state *s = l->priv;
  const cg_blob *b = bottom[0];
  if (b->num_axes != 4)
    return cg_error(CG_ERR_SHAPE, "input must have 4 axes (num, channels, height, width), has %d", b->num_axes);
  s->num = b->shape[0], s->channels = b->shape[1], s->height = b->shape[2], s->width = b->shape[3];
  if (s->global) s->kernel_h = s->height, s->kernel_w = s->width;
  if (s->height <= 0 || s->width <= 0) return cg_error(CG_ERR_SHAPE, "input has an empty spatial axis");
  if ((long long)s->height * s->width > INT_MAX) return cg_error(CG_ERR_SHAPE, "input plane is too large");
  int rc = pooled_size(s, s->height, s->kernel_h, s->pad_h, s->stride_h, "height", &s->pooled_h);
  if (!rc) rc = pooled_size(s, s->width, s->kernel_w, s->pad_w, s->stride_w, "width", &s->pooled_w);
  if (!rc) rc = cg_blob_reshape4(top[0], s->num, s->channels, s->pooled_h, s->pooled_w);
  if (!rc && l->num_tops > 1) rc = cg_blob_reshape_like(top[1], top[0]);
  if (!rc && s->method == POOL_MAX) rc = cg_scratch_ints(&s->mask, &s->mask_capacity, top[0]->count);
  return rc;
}

/* The window of output row/column `p` along one axis, clipped to the image. */
static inline void window(int p, int stride, int pad, int kernel, int size, int *start, int *end) {
  int a = p * stride - pad, b = a + kernel;
  *start = a < 0 ? 0 : a;
  *end = b < size ? b : size;
}

/* The output columns [lo, hi) whose windows lie wholly inside a row: there the fast
 * kernels need no clipping, so they can vectorise across columns. */
static void interior_columns(const pool_state *s, int *lo, int *hi) {
  int last = s->width + s->pad_w - s->kernel_w; /* start of the last window that fits */
  *hi = last < 0 ? 0 : last / s->stride_w + 1;
  if (*hi > s->pooled_w) *hi = s->pooled_w;
  *lo = (s->pad_w + s->stride_w - 1) / s->stride_w;
  if (*lo > *hi) *lo = *hi;
}

/* One MAX output over rows [hstart, hend) and columns [wstart, wend): the first
 * strict maximum wins, as in Caffe; a window with no element better than -FLT_MAX
 * (or an empty one) gives -FLT_MAX with index -1. */
static inline __attribute__((always_inline)) void max_one(const float *restrict in, int W, int hstart, int hend,
                                                          int wstart, int wend, float *restrict out,
                                                          int *restrict mask) {
  float best = -FLT_MAX;
  int best_index = -1;
  for (int h = hstart; h < hend; h++)
    for (int w = wstart; w < wend; w++) {
      int index = h * W + w;
      float v = in[index];
      bool better = v > best; /* strictly greater: the first maximum wins */
      best_index = better ? index : best_index;
      best = better ? v : best;
    }
  *out = best;
  *mask = best_index;
}

/* The outputs [lo, hi) of one row whose windows are whole K x K squares starting at
 * input row h0, with column stride S. K and S are constants where this is inlined,
 * so the window unrolls and the compiler vectorises across outputs; the comparisons
 * run in max_one's order, so the result is the same bit for bit. */
static inline __attribute__((always_inline)) void max_whole_windows(const float *restrict in, int W, int h0, int K,
                                                                    int S, int pad_w, int lo, int hi,
                                                                    float *restrict out, int *restrict mask) {
  for (int pw = lo; pw < hi; pw++) {
    int w0 = pw * S - pad_w;
    max_one(in, W, h0, h0 + K, w0, w0 + K, out + pw, mask + pw);
  }
}

typedef void (*max_row_fn)(const float *restrict, int, int, int, int, int, float *restrict, int *restrict);
static void max_row_2s2(const float *restrict in, int W, int h0, int pad_w, int lo, int hi, float *restrict out,
                        int *restrict mask) {
  max_whole_windows(in, W, h0, 2, 2, pad_w, lo, hi, out, mask);
}
static void max_row_3s2(const float *restrict in, int W, int h0, int pad_w, int lo, int hi, float *restrict out,
                        int *restrict mask) {
  max_whole_windows(in, W, h0, 3, 2, pad_w, lo, hi, out, mask);
}

static bool use_reference = false;
void cg_pool_use_reference(bool on) { use_reference = on; }

/* The kernel for the windows Caffe's nets use most (2x2 and 3x3, stride 2), NULL for others. */
static max_row_fn max_row_kernel(const pool_state *s) {
  if (use_reference || s->kernel_h != s->kernel_w || s->stride_h != 2 || s->stride_w != 2) return NULL;
  return s->kernel_h == 2 ? max_row_2s2 : s->kernel_h == 3 ? max_row_3s2 : NULL;
}

/* Plain ints copied out of the state, so the compiler need not reload them after
 * every store through an int* (the mask). In rows whose windows are whole, the
 * interior columns go through the specialised kernel (LeNet's pool1 forward: 1.0 ->
 * 0.3 ms); clipped windows are done one at a time. */
static void max_plane(const pool_state *s, const float *restrict in, float *restrict out, int *restrict mask) {
  const int W = s->width, H = s->height, PH = s->pooled_h, PW = s->pooled_w;
  const int sh = s->stride_h, sw = s->stride_w, ph_ = s->pad_h, pw_ = s->pad_w, kh = s->kernel_h, kw = s->kernel_w;
  max_row_fn fast = max_row_kernel(s);
  int lo = 0, hi = 0;
  if (fast) interior_columns(s, &lo, &hi);
  for (int ph = 0; ph < PH; ph++) {
    int hstart, hend;
    window(ph, sh, ph_, kh, H, &hstart, &hend);
    float *o = out + ph * PW;
    int *m = mask + ph * PW;
    int a = lo, b = hi;
    if (fast && hend - hstart == kh && hstart == ph * sh - ph_ && a < b)
      fast(in, W, hstart, pw_, a, b, o, m);
    else
      a = b = 0;
    for (int pw = 0; pw < PW; pw++) {
      if (pw == a) pw = b;
      if (pw >= PW) break;
      int wstart, wend;
      window(pw, sw, pw_, kw, W, &wstart, &wend);
      max_one(in, W, hstart, hend, wstart, wend, o + pw, m + pw);
    }
  }
}

/* Caffe's AVE window: the divisor counts the padded window clipped to the padded
 * image; the sum runs over the part inside the image. */
static inline void ave_window(int p, int stride, int pad, int kernel, int size, int *start, int *end, int *extent) {
  int a = p * stride - pad, b = a + kernel < size + pad ? a + kernel : size + pad;
  *extent = b - a;
  *start = a < 0 ? 0 : a;
  *end = b < size ? b : size;
}

/* One AVE output: the sum over the window's part inside the image, divided by
 * the padded window's size (0 only for a window wholly past the image, kernel < stride). */
static inline float ave_one(const pool_state *s, const float *restrict in, int hstart, int hend, int hext, int pw) {
  int wstart, wend, wext;
  ave_window(pw, s->stride_w, s->pad_w, s->kernel_w, s->width, &wstart, &wend, &wext);
  int pool_size = hext * wext;
  float sum = 0;
  for (int h = hstart; h < hend; h++)
    for (int w = wstart; w < wend; w++) sum += in[h * s->width + w];
  return pool_size > 0 ? sum / (float)pool_size : 0.0f;
}

static void ave_plane_ref(const pool_state *s, const float *restrict in, float *restrict out) {
  for (int ph = 0; ph < s->pooled_h; ph++) {
    int hstart, hend, hext;
    ave_window(ph, s->stride_h, s->pad_h, s->kernel_h, s->height, &hstart, &hend, &hext);
    for (int pw = 0; pw < s->pooled_w; pw++) out[ph * s->pooled_w + pw] = ave_one(s, in, hstart, hend, hext, pw);
  }
}

static void ave_plane(const pool_state *s, const float *restrict in, float *restrict out) {
  const int W = s->width, H = s->height, PH = s->pooled_h, PW = s->pooled_w;
  const int sh = s->stride_h, sw = s->stride_w, ph_ = s->pad_h, pw_ = s->pad_w, kh = s->kernel_h, kw = s->kernel_w;
  int lo, hi;
  interior_columns(s, &lo, &hi);
  if (lo >= hi || use_reference) {
    ave_plane_ref(s, in, out);
    return;
  }
  /* the window's positions outermost and the columns innermost (vectorised), each
   * output's inputs visited in the reference's order */
  for (int ph = 0; ph < PH; ph++) {
    int hstart, hend, hext;
    ave_window(ph, sh, ph_, kh, H, &hstart, &hend, &hext);
    float *restrict o = out + ph * PW;
    for (int pw = lo; pw < hi; pw++) o[pw] = 0.0f;
    for (int h = hstart; h < hend; h++)
      for (int kx = 0; kx < kw; kx++) {
        const int base = h * W + kx - pw_;
        for (int pw = lo; pw < hi; pw++) o[pw] += in[base + pw * sw];
      }
    int pool_size = hext * kw; /* an interior window is kw wide */
    for (int pw = lo; pw < hi; pw++) o[pw] = pool_size > 0 ? o[pw] / (float)pool_size : 0.0f;
    for (int pw = 0; pw < PW; pw++) { /* the clipped windows at both ends */
      if (pw == lo) pw = hi;
      if (pw >= PW) break;
      o[pw] = ave_one(s, in, hstart, hend, hext, pw);
    }
  }
}

static void ave_plane_backward(const pool_state *s, const float *restrict top_diff, float *restrict bottom_diff) {
  const int W = s->width, H = s->height, PH = s->pooled_h, PW = s->pooled_w;
  const int sh = s->stride_h, sw = s->stride_w, ph_ = s->pad_h, pw_ = s->pad_w, kh = s->kernel_h, kw = s->kernel_w;
  for (int ph = 0; ph < PH; ph++) {
    int hstart, hend, hext;
    ave_window(ph, sh, ph_, kh, H, &hstart, &hend, &hext);
    for (int pw = 0; pw < PW; pw++) {
      int wstart, wend, wext;
      ave_window(pw, sw, pw_, kw, W, &wstart, &wend, &wext);
      int pool_size = hext * wext;
      if (pool_size <= 0) continue;
      float g = top_diff[ph * PW + pw] / (float)pool_size;
      for (int h = hstart; h < hend; h++)
        for (int w = wstart; w < wend; w++) bottom_diff[h * W + w] += g;
    }
  }
}

static int pool_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  pool_state *s = l->priv;
  long planes = (long)s->num * s->channels;
  size_t in_dim = (size_t)s->height * s->width, out_dim = (size_t)s->pooled_h * s->pooled_w;
  const float *in = bottom[0]->data;
  float *out = top[0]->data;
  bool big = (size_t)planes * in_dim >= PARALLEL_MIN_ELEMENTS;
  if (s->method == POOL_MAX) {
#pragma omp parallel for schedule(static) if (big)
    for (long i = 0; i < planes; i++) max_plane(s, in + i * in_dim, out + i * out_dim, s->mask + i * out_dim);
    if (l->num_tops > 1)
      for (size_t i = 0; i < top[1]->count; i++) top[1]->data[i] = (float)s->mask[i];
  } else {
#pragma omp parallel for schedule(static) if (big)
    for (long i = 0; i < planes; i++) ave_plane(s, in + i * in_dim, out + i * out_dim);
  }
  return CG_OK;
}

static void pool_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  pool_state *s = l->priv;
  if (!propagate_down[0]) return;
  long planes = (long)s->num * s->channels;
  size_t in_dim = (size_t)s->height * s->width, out_dim = (size_t)s->pooled_h * s->pooled_w;
  const float *top_diff = top[0]->diff;
  float *bottom_diff = bottom[0]->diff;
  bool big = (size_t)planes * in_dim >= PARALLEL_MIN_ELEMENTS;
  /* each plane is cleared by the thread that fills it, while it is in that core's cache */
  if (s->method == POOL_MAX) {
#pragma omp parallel for schedule(static) if (big)
    for (long i = 0; i < planes; i++) {
      const int *mask = s->mask + i * out_dim;
      const float *td = top_diff + i * out_dim;
      float *bd = bottom_diff + i * in_dim;
      memset(bd, 0, in_dim * sizeof(float));
      for (size_t j = 0; j < out_dim; j++)
        if (mask[j] >= 0) bd[mask[j]] += td[j];
    }
  } else {
#pragma omp parallel for schedule(static) if (big)
    for (long i = 0; i < planes; i++) {
      memset(bottom_diff + i * in_dim, 0, in_dim * sizeof(float));
      ave_plane_backward(s, top_diff + i * out_dim, bottom_diff + i * in_dim);
    }
  }
}

static void pool_destroy(cg_layer *l) {
  pool_state *s = l->priv;
  if (!s) return;
  free(s->mask);
  free(s);
  l->priv = NULL;
}

const cg_layer_ops cg_layer_pooling = {
    .type = "Pooling",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 2,
    .setup = pool_setup,
    .reshape = pool_reshape,
    .forward = pool_forward,
    .backward = pool_backward,
    .destroy = pool_destroy,
};
