/* Fast kernels against the naive reference kernels kept beside them, on random
 * data with odd shapes: im2col/col2im with row strides against cg_im2col/cg_col2im
 * (bit-identical), and Convolution's fast paths (several images per gemm, chunked,
 * with remainders; oneDNN) against the per-image kernels Deconvolution uses. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/layer.h"
#include "layers/conv_common.h"
#include "layers/pooling.h"
#include "caffegrid/runtime.h"
#include "math/backend.h"
#include "math/math.h"
#include "proto/text_format.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float rnd(void) { /* uniform in [-1, 1) */
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return (float)((rng_state >> 40) * (1.0 / (1ull << 24))) * 2.0f - 1.0f;
}

static void fill(float *v, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] = rnd();
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

/* channels, height, width, kernel h/w, pad h/w, stride h/w, dilation h/w */
typedef struct geom {
  int c, h, w, kh, kw, ph, pw, sh, sw, dh, dw;
} geom;

static const geom geoms[] = {
    {3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1},   {2, 11, 5, 5, 3, 2, 0, 1, 2, 1, 1}, {1, 13, 13, 11, 11, 0, 0, 4, 4, 1, 1},
    {4, 6, 7, 3, 2, 2, 3, 2, 3, 2, 1},   {5, 5, 5, 1, 1, 0, 0, 1, 1, 1, 1},  {2, 9, 10, 2, 4, 0, 1, 3, 1, 1, 3},
    {3, 4, 4, 5, 5, 2, 2, 1, 1, 1, 1},   {1, 1, 17, 1, 3, 0, 1, 1, 2, 1, 1},
};

static void test_im2col_col2im(void) {
  for (size_t t = 0; t < sizeof geoms / sizeof geoms[0]; t++) {
    const geom *g = &geoms[t];
    int oh = (g->h + 2 * g->ph - (g->dh * (g->kh - 1) + 1)) / g->sh + 1;
    int ow = (g->w + 2 * g->pw - (g->dw * (g->kw - 1) + 1)) / g->sw + 1;
    size_t rows = (size_t)g->c * g->kh * g->kw, n = (size_t)oh * ow, ld = n + 5, im_n = (size_t)g->c * g->h * g->w;
    float *im = malloc(im_n * sizeof *im), *ref = malloc(rows * n * sizeof *ref);
    float *fast = malloc(rows * ld * sizeof *fast);
    fill(im, im_n);
    cg_im2col(im, g->c, g->h, g->w, g->kh, g->kw, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw, ref);
    for (size_t i = 0; i < rows * ld; i++) fast[i] = NAN; /* the gaps must stay untouched */
    cg_im2col_ld(im, g->c, g->h, g->w, g->kh, g->kw, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw, fast, ld);
    bool same = true, gaps = true;
    for (size_t r = 0; r < rows; r++) {
      same = same && memcmp(ref + r * n, fast + r * ld, n * sizeof(float)) == 0;
      for (size_t j = n; j < ld; j++) gaps = gaps && isnan(fast[r * ld + j]);
    }
    CHECK_MSG(same, "geometry %zu: cg_im2col_ld differs from cg_im2col", t);
    CHECK_MSG(gaps, "geometry %zu: cg_im2col_ld wrote past its rows", t);
    /* col2im: accumulate into the same random image, bit-identical */
    fill(fast, rows * ld);
    for (size_t r = 0; r < rows; r++) memcpy(ref + r * n, fast + r * ld, n * sizeof(float));
    float *im_ref = malloc(im_n * sizeof *im_ref), *im_fast = malloc(im_n * sizeof *im_fast);
    fill(im_ref, im_n);
    memcpy(im_fast, im_ref, im_n * sizeof(float));
    cg_col2im(ref, g->c, g->h, g->w, g->kh, g->kw, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw, im_ref);
    cg_col2im_ld(fast, ld, g->c, g->h, g->w, g->kh, g->kw, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw, im_fast);
    CHECK_MSG(memcmp(im_ref, im_fast, im_n * sizeof(float)) == 0, "geometry %zu: cg_col2im_ld differs by %g", t,
              max_abs_diff(im_ref, im_fast, im_n));
    free(im), free(ref), free(fast), free(im_ref), free(im_fast);
  }
}

/* A Convolution layer over `bottom` (gemm path or oneDNN), or NULL on failure. */
static bool conv_layer(cg_layer *l, ProtobufCMessage **msg, const char *text, cg_blob *bottom, cg_blob *top,
                       bool dnnl) {
  memset(l, 0, sizeof *l);
  cg_runtime_use_fast_conv(dnnl);
  int rc = cg_text_parse(&caffe__layer_parameter__descriptor, text, strlen(text), "test", msg);
  if (!rc) rc = cg_layer_instantiate(l, (Caffe__LayerParameter *)*msg, CG_TRAIN, &bottom, 1, &top, 1, 42);
  cg_runtime_use_fast_conv(true);
  CHECK_MSG(rc == 0, "%s: %s", text, cg_error_message());
  return rc == 0;
}

/* A Convolution layer's fast path against the per-image reference kernels
 * (cg_conv_im_to_col_side etc.) of a second, gemm-path layer with the same
 * weights: the batched gemm path chunked `batch` images at a time, or oneDNN. */
static void check_conv_fast(const geom *g, int num, int num_output, int group, int batch, bool dnnl) {
  char text[512], shape[64];
  snprintf(text, sizeof text,
           "name: \"c\" type: \"Convolution\" convolution_param { num_output: %d group: %d kernel_h: %d kernel_w: %d "
           "pad_h: %d pad_w: %d stride_h: %d stride_w: %d dilation: %d dilation: %d }",
           num_output, group, g->kh, g->kw, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw);
  snprintf(shape, sizeof shape, "%d %d %d %d", num, g->c * group, g->h, g->w);
  int dims[4] = {num, g->c * group, g->h, g->w};
  cg_blob *bottom = cg_blob_create("bottom"), *top = cg_blob_create("top"), *ref_top = cg_blob_create("ref_top");
  cg_blob_reshape(bottom, 4, dims);
  ProtobufCMessage *msg = NULL, *ref_msg = NULL;
  cg_layer l, ref;
  bool ok = conv_layer(&ref, &ref_msg, text, bottom, ref_top, false) && conv_layer(&l, &msg, text, bottom, top, dnnl);
  if (!ok) goto done;
  cg_conv_state *s = l.priv, *rs = ref.priv;
  CHECK_MSG(dnnl == (s->kernel != NULL), "%s on %s: fast kernels %s", text, shape,
            dnnl ? "not used" : "used");
  if (batch < s->batch) s->batch = batch; /* force chunks (and a remainder) on small shapes */
  fill(bottom->data, bottom->count);
  fill(l.params[0]->data, l.params[0]->count);
  fill(l.params[1]->data, l.params[1]->count);
  fill(top->diff, top->count);
  size_t top_dim = top->count / num, bottom_dim = bottom->count / num, wn = l.params[0]->count;
  size_t spatial = (size_t)s->col_h * s->col_w;
  float *want_top = malloc(top->count * sizeof(float)), *want_bd = malloc(bottom->count * sizeof(float));
  float *want_wd = malloc(wn * sizeof(float)), *want_bias = malloc(num_output * sizeof(float));
  /* parameter gradients accumulate: both start from 1 */
  for (size_t i = 0; i < wn; i++) want_wd[i] = l.params[0]->diff[i] = 1.0f;
  for (int i = 0; i < num_output; i++) want_bias[i] = l.params[1]->diff[i] = 1.0f;
  for (int n = 0; n < num; n++) {
    cg_conv_im_to_col_side(rs, bottom->data + n * bottom_dim, l.params[0]->data, want_top + n * top_dim);
    cg_conv_add_bias(num_output, (int)spatial, l.params[1]->data, want_top + n * top_dim);
    cg_conv_bias_grad(num_output, (int)spatial, top->diff + n * top_dim, want_bias);
    cg_conv_weight_grad(rs, bottom->data + n * bottom_dim, top->diff + n * top_dim, want_wd);
    cg_conv_col_side_to_im(rs, top->diff + n * top_dim, l.params[0]->data, want_bd + n * bottom_dim);
  }
  CHECK_EQ_INT(l.ops->forward(&l, &bottom, &top), 0);
  bool prop = true;
  l.ops->backward(&l, &top, &prop, &bottom);
  double dt = max_abs_diff(want_top, top->data, top->count), db = max_abs_diff(want_bd, bottom->diff, bottom->count);
  double dw = max_abs_diff(want_wd, l.params[0]->diff, wn);
  double dbias = max_abs_diff(want_bias, l.params[1]->diff, num_output);
  const char *path = s->kernel ? s->kernel->name : "batched gemm";
  CHECK_MSG(dt < 1e-4, "%s, %s on %s, batch %d: top differs by %g", path, text, shape, batch, dt);
  CHECK_MSG(db < 1e-4, "%s, %s on %s, batch %d: bottom diff differs by %g", path, text, shape, batch, db);
  CHECK_MSG(dw < 1e-3, "%s, %s on %s, batch %d: weight diff differs by %g", path, text, shape, batch, dw);
  /* the gemm path sums the bias gradient in the reference's order; oneDNN and the direct kernels in their own */
  CHECK_MSG(dnnl ? dbias < 1e-4 : dbias == 0, "%s, %s on %s, batch %d: bias diff differs by %g", path, text, shape,
            batch, dbias);
  free(want_top), free(want_bd), free(want_wd), free(want_bias);
done:
  if (l.ops) cg_layer_destroy(&l);
  if (ref.ops) cg_layer_destroy(&ref);
  if (msg) protobuf_c_message_free_unpacked(msg, NULL);
  if (ref_msg) protobuf_c_message_free_unpacked(ref_msg, NULL);
  cg_blob_free(bottom);
  cg_blob_free(top);
  cg_blob_free(ref_top);
}

static void test_conv_batched(void) {
  static const int batches[] = {1, 2, 3, 100};
  for (size_t t = 0; t < sizeof geoms / sizeof geoms[0]; t++)
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
      check_conv_fast(&geoms[t], 7, 5, 1, batches[b], false);
      check_conv_fast(&geoms[t], 5, 6, 3, batches[b], false);
    }
}

/* oneDNN on every geometry above (three leave bottom rows or columns unread), with
 * groups, on channel counts oneDNN blocks by 16 (so it picks blocked layouts), and
 * on 16 or more channels that are not a multiple of 16 (channels-last layouts) */
static void test_conv_dnnl(void) {
  for (size_t t = 0; t < sizeof geoms / sizeof geoms[0]; t++) {
    check_conv_fast(&geoms[t], 7, 5, 1, 1, true);
    check_conv_fast(&geoms[t], 5, 6, 3, 1, true);
  }
  static const geom wide[] = {{32, 8, 8, 5, 5, 2, 2, 1, 1, 1, 1}, {48, 7, 6, 3, 3, 1, 1, 2, 2, 1, 1}};
  for (size_t t = 0; t < sizeof wide / sizeof wide[0]; t++) {
    check_conv_fast(&wide[t], 3, 32, 1, 1, true);
    check_conv_fast(&wide[t], 2, 64, 2, 1, true);
  }
  static const geom uneven[] = {{20, 12, 12, 5, 5, 0, 0, 1, 1, 1, 1}, {20, 9, 8, 3, 3, 1, 1, 2, 2, 1, 1},
                                {17, 6, 7, 3, 2, 2, 3, 2, 3, 2, 1}};
  for (size_t t = 0; t < sizeof uneven / sizeof uneven[0]; t++) {
    check_conv_fast(&uneven[t], 3, 50, 1, 1, true);
    check_conv_fast(&uneven[t], 2, 6, 2, 1, true);
  }
}

/* The direct single-channel kernels (math/conv_single.c): LeNet's conv1, and widths
 * with edge tiles, kernel rows of 5 taps and others, 4-channel blocks and lone channels */
static void test_conv_single(void) {
  static const geom single[] = {{1, 28, 28, 5, 5, 0, 0, 1, 1, 1, 1}, {1, 12, 30, 5, 5, 0, 0, 1, 1, 1, 1},
                                {1, 9, 13, 3, 3, 0, 0, 1, 1, 1, 1},  {1, 7, 60, 2, 7, 0, 0, 1, 1, 1, 1},
                                {1, 5, 5, 5, 5, 0, 0, 1, 1, 1, 1}};
  static const int outputs[] = {20, 7, 1, 6};
  for (size_t t = 0; t < sizeof single / sizeof single[0]; t++)
    for (size_t o = 0; o < sizeof outputs / sizeof outputs[0]; o++)
      check_conv_fast(&single[t], 3, outputs[o], 1, 1, true);
}

/* Pooling's fast kernels against the reference kernels, bit for bit: AVE makes the
 * same additions in the same order, MAX the same comparisons (ties and mask included). */
static void check_pool(const char *param, int n, int c, int h, int w) {
  char text[256];
  snprintf(text, sizeof text, "name: \"p\" type: \"Pooling\" pooling_param { %s }", param);
  int dims[4] = {n, c, h, w};
  cg_blob *bottom = cg_blob_create("bottom"), *tops[2] = {cg_blob_create("top"), cg_blob_create("mask")};
  cg_blob *want[2] = {cg_blob_create("want"), cg_blob_create("want_mask")};
  cg_blob_reshape(bottom, 4, dims);
  fill(bottom->data, bottom->count);
  for (size_t i = 0; i < bottom->count; i += 7) bottom->data[i] = bottom->data[i / 2]; /* ties */
  bool max = strstr(param, "MAX") != NULL;
  for (size_t i = 0; max && i + 1 < bottom->count; i += 5) bottom->data[i + 1] = bottom->data[i]; /* ties in a window */
  for (size_t i = 0; max && i < bottom->count; i += 11) bottom->data[i] = -FLT_MAX; /* never better than the start */
  for (size_t i = 3; max && i < bottom->count; i += 13) bottom->data[i] = NAN;      /* never better than anything */
  int ntops = max ? 2 : 1;
  ProtobufCMessage *msg = NULL;
  cg_layer l;
  memset(&l, 0, sizeof l);
  int rc = cg_text_parse(&caffe__layer_parameter__descriptor, text, strlen(text), "test", &msg);
  if (!rc) rc = cg_layer_instantiate(&l, (Caffe__LayerParameter *)msg, CG_TRAIN, &bottom, 1, tops, ntops, 42);
  CHECK_MSG(rc == 0, "%s: %s", text, cg_error_message());
  if (rc) goto done;
  cg_pool_use_reference(true);
  CHECK_EQ_INT(l.ops->forward(&l, &bottom, tops), 0);
  cg_pool_use_reference(false);
  for (int t = 0; t < ntops; t++) {
    cg_blob_reshape_like(want[t], tops[t]);
    memcpy(want[t]->data, tops[t]->data, tops[t]->count * sizeof(float));
  }
  CHECK_EQ_INT(l.ops->forward(&l, &bottom, tops), 0);
  for (int t = 0; t < ntops; t++)
    CHECK_MSG(memcmp(want[t]->data, tops[t]->data, tops[t]->count * sizeof(float)) == 0,
              "%s on %d %d %d %d: top %d differs from the reference by %g", text, n, c, h, w, t,
              max_abs_diff(want[t]->data, tops[t]->data, tops[t]->count));
done:
  if (l.ops) cg_layer_destroy(&l);
  if (msg) protobuf_c_message_free_unpacked(msg, NULL);
  cg_blob_free(bottom);
  for (int t = 0; t < 2; t++) cg_blob_free(tops[t]), cg_blob_free(want[t]);
}

static void test_pool_fast(void) {
  static const char *params[] = {
      "pool: AVE kernel_size: 3 stride: 2", "pool: AVE kernel_size: 3 stride: 2 pad: 1",
      "pool: AVE kernel_size: 5 stride: 3 pad: 2", "pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 3 pad_h: 1 pad_w: 1",
      "pool: AVE kernel_size: 2 stride: 1 round_mode: FLOOR", "pool: AVE kernel_size: 3 stride: 4",
      "pool: MAX kernel_size: 2 stride: 2", "pool: MAX kernel_size: 3 stride: 2",
      "pool: MAX kernel_size: 3 stride: 2 pad: 1", "pool: MAX kernel_size: 2 stride: 2 pad: 1 round_mode: FLOOR",
      "pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR", "pool: MAX kernel_h: 3 kernel_w: 2 stride: 2"};
  static const int shapes[][4] = {{2, 3, 9, 9}, {1, 2, 16, 17}, {3, 1, 7, 32}, {1, 1, 5, 4}, {2, 20, 24, 24}};
  for (size_t p = 0; p < sizeof params / sizeof params[0]; p++)
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
      check_pool(params[p], shapes[t][0], shapes[t][1], shapes[t][2], shapes[t][3]);
}

int main(void) {
  test_im2col_col2im();
  test_conv_batched();
  test_conv_dnnl();
  test_conv_single();
  test_pool_fast();
  return CHECK_REPORT();
}
