/* Forward values of the vision and loss layers on hand-computed cases (Caffe's
 * output-size rules, AVE divisors, tie rules, normalisations), and the im2col
 * convolution/deconvolution against naive direct loops on random data. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/layer.h"
#include "caffegrid/rng.h"
#include "proto/text_format.h"

enum { MAX_BLOBS = 4 };

/* One layer under test, with the bottoms and tops it owns. */
typedef struct fixture {
  cg_layer l;
  ProtobufCMessage *msg;
  cg_blob *bottom[MAX_BLOBS], *top[MAX_BLOBS];
  int nb, nt;
  int rc; /* from parsing + cg_layer_instantiate */
} fixture;

/* shapes: one string per bottom, e.g. "1 1 3 3"; data filled afterwards by the test. */
static void fixture_init(fixture *f, const char *text, const char *const *shapes, int nb, int nt) {
  memset(f, 0, sizeof *f);
  f->nb = nb, f->nt = nt;
  for (int i = 0; i < nb; i++) {
    int shape[CG_BLOB_MAX_AXES], na = 0;
    const char *p = shapes[i];
    char *end;
    for (long v; (v = strtol(p, &end, 10)), end != p; p = end) shape[na++] = (int)v;
    f->bottom[i] = cg_blob_create("bottom");
    cg_blob_reshape(f->bottom[i], na, shape);
  }
  for (int i = 0; i < nt; i++) f->top[i] = cg_blob_create("top");
  f->rc = cg_text_parse(&caffe__layer_parameter__descriptor, text, strlen(text), "test", &f->msg);
  if (f->rc) return;
  Caffe__LayerParameter *param = (Caffe__LayerParameter *)f->msg;
  if (!param->name) param->name = strdup("t");
  f->rc = cg_layer_instantiate(&f->l, param, CG_TRAIN, f->bottom, nb, f->top, nt, 42);
}

/* Only for fixtures whose bottoms were reshaped after init: redo the layer's reshape. */
static int fixture_reshape(fixture *f) { return f->l.ops->reshape(&f->l, f->bottom, f->top); }

static int fixture_forward(fixture *f) { return f->l.ops->forward(&f->l, f->bottom, f->top); }

static void fixture_free(fixture *f) {
  if (f->l.ops) cg_layer_destroy(&f->l);
  for (int i = 0; i < f->nb; i++) cg_blob_free(f->bottom[i]);
  for (int i = 0; i < f->nt; i++) cg_blob_free(f->top[i]);
  if (f->msg) protobuf_c_message_free_unpacked(f->msg, NULL);
}

static void set_data(cg_blob *b, const float *v) { memcpy(b->data, v, b->count * sizeof(float)); }

static void check_shape4(const cg_blob *b, int n, int c, int h, int w) {
  CHECK_EQ_INT(b->num_axes, 4);
  CHECK_EQ_INT(b->shape[0], n);
  CHECK_EQ_INT(b->shape[1], c);
  CHECK_EQ_INT(b->shape[2], h);
  CHECK_EQ_INT(b->shape[3], w);
}

/* ---------- Convolution */

static void test_conv_known(void) {
  const char *shapes[] = {"1 1 3 3"};
  fixture f;
  fixture_init(&f, "type: \"Convolution\" convolution_param { num_output: 1 kernel_size: 2 }", shapes, 1, 1);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  CHECK_EQ_INT(f.l.num_params, 2);
  check_shape4(f.l.params[0], 1, 1, 2, 2);
  CHECK_EQ_INT(f.l.params[1]->count, 1);
  float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 2, 3, 4}, b = 0.5f;
  set_data(f.bottom[0], in);
  set_data(f.l.params[0], w);
  f.l.params[1]->data[0] = b;
  CHECK_EQ_INT(fixture_forward(&f), 0);
  check_shape4(f.top[0], 1, 1, 2, 2);
  const float want[4] = {37.5f, 47.5f, 67.5f, 77.5f};
  for (int i = 0; i < 4; i++) CHECK_NEAR(f.top[0]->data[i], want[i], 1e-5);
  /* backward: weight grad = sum over outputs of top_diff * window; with top_diff = 1: window sums */
  for (int i = 0; i < 4; i++) f.top[0]->diff[i] = 1;
  memset(f.l.params[0]->diff, 0, 4 * sizeof(float));
  f.l.params[1]->diff[0] = 10; /* accumulates */
  bool prop[1] = {true};
  f.l.ops->backward(&f.l, f.top, prop, f.bottom);
  const float wgrad[4] = {1 + 2 + 4 + 5, 2 + 3 + 5 + 6, 4 + 5 + 7 + 8, 5 + 6 + 8 + 9};
  for (int i = 0; i < 4; i++) CHECK_NEAR(f.l.params[0]->diff[i], wgrad[i], 1e-5);
  CHECK_NEAR(f.l.params[1]->diff[0], 14, 1e-5);
  const float bgrad[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
  for (int i = 0; i < 9; i++) CHECK_NEAR(f.bottom[0]->diff[i], bgrad[i], 1e-5);
  fixture_free(&f);
}

static void expect_conv_shape(const char *type, const char *param, const char *shape, int c, int h, int w) {
  char text[512];
  snprintf(text, sizeof text, "type: \"%s\" convolution_param { %s }", type, param);
  const char *shapes[] = {shape};
  fixture f;
  fixture_init(&f, text, shapes, 1, 1);
  CHECK_MSG(f.rc == 0, "%s: %s", text, cg_error_message());
  if (!f.rc) check_shape4(f.top[0], f.bottom[0]->shape[0], c, h, w);
  fixture_free(&f);
}

static void expect_error(const char *text, const char *shape, int code, const char *words) {
  const char *shapes[] = {shape};
  fixture f;
  fixture_init(&f, text, shapes, 1, 1);
  CHECK_MSG(f.rc == code, "%s: got %d (%s), wanted %d", text, f.rc, cg_error_message(), code);
  CHECK_STR_CONTAINS(cg_error_message(), words);
  fixture_free(&f);
}

static void test_conv_shapes_and_errors(void) {
  expect_conv_shape("Convolution", "num_output: 4 kernel_size: 3 stride: 2 pad: 1", "2 3 7 7", 4, 4, 4);
  expect_conv_shape("Convolution", "num_output: 4 kernel_size: 3 stride: 2 pad: 1 dilation: 2", "2 3 7 7", 4, 3, 3);
  expect_conv_shape("Convolution", "num_output: 2 kernel_h: 3 kernel_w: 1 pad_h: 0 pad_w: 2", "1 1 5 5", 2, 3, 9);
  expect_conv_shape("Convolution", "num_output: 2 kernel_size: 3 kernel_size: 1 stride: 1 stride: 3", "1 1 5 7", 2, 3, 3);
  expect_conv_shape("Convolution", "num_output: 96 kernel_size: 11 stride: 4", "1 3 227 227", 96, 55, 55);
  expect_conv_shape("Deconvolution", "num_output: 2 kernel_size: 3 stride: 2 pad: 1", "1 3 3 3", 2, 5, 5);
  expect_conv_shape("Deconvolution", "num_output: 2 kernel_size: 4 stride: 2 pad: 1", "1 3 8 8", 2, 16, 16);
  expect_error("type: \"Convolution\" convolution_param { num_output: 4 kernel_size: 3 group: 2 }", "1 3 5 5",
               CG_ERR_INVALID, "divisible by group");
  expect_error("type: \"Convolution\" convolution_param { num_output: 3 kernel_size: 3 group: 2 }", "1 4 5 5",
               CG_ERR_INVALID, "multiple of group");
  expect_error("type: \"Convolution\" convolution_param { num_output: 4 kernel_size: 7 pad: 1 }", "1 3 4 4",
               CG_ERR_SHAPE, "larger than the padded input");
  expect_error("type: \"Convolution\" convolution_param { kernel_size: 3 }", "1 3 5 5", CG_ERR_INVALID, "num_output");
  expect_error("type: \"Convolution\" convolution_param { num_output: 2 }", "1 3 5 5", CG_ERR_INVALID, "kernel");
  expect_error("type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 3 kernel_h: 3 kernel_w: 3 }",
               "1 3 5 5", CG_ERR_INVALID, "not both");
  expect_error("type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 3 }", "1 3 5 5 5",
               CG_ERR_UNSUPPORTED, "2-d");
}

/* Naive direct convolution: out[n,o,y,x] = b[o] + sum w[o,ci,ky,kx] * in[n, g*Cg+ci, y*s-p+ky*d, x*s-p+kx*d]. */
typedef struct conv_cfg {
  int N, C, H, W, O, G, kh, kw, sh, sw, ph, pw, dh, dw;
} conv_cfg;

static void naive_conv(const conv_cfg *c, int OH, int OW, const float *in, const float *w, const float *b,
                       float *out) {
  int Cg = c->C / c->G, Og = c->O / c->G;
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->O; o++)
      for (int y = 0; y < OH; y++)
        for (int x = 0; x < OW; x++) {
          double s = b ? b[o] : 0;
          int g = o / Og;
          for (int ci = 0; ci < Cg; ci++)
            for (int ky = 0; ky < c->kh; ky++)
              for (int kx = 0; kx < c->kw; kx++) {
                int iy = y * c->sh - c->ph + ky * c->dh, ix = x * c->sw - c->pw + kx * c->dw;
                if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                s += (double)w[((o * Cg + ci) * c->kh + ky) * c->kw + kx] *
                     in[((n * c->C + g * Cg + ci) * c->H + iy) * c->W + ix];
              }
          out[((n * c->O + o) * OH + y) * OW + x] = (float)s;
        }
}

/* Its gradients: bottom_diff (overwritten) and weight_diff (accumulated). */
static void naive_conv_backward(const conv_cfg *c, int OH, int OW, const float *in, const float *w,
                                const float *top_diff, float *bottom_diff, float *weight_diff) {
  int Cg = c->C / c->G, Og = c->O / c->G;
  memset(bottom_diff, 0, sizeof(float) * (size_t)c->N * c->C * c->H * c->W);
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->O; o++)
      for (int y = 0; y < OH; y++)
        for (int x = 0; x < OW; x++) {
          float t = top_diff[((n * c->O + o) * OH + y) * OW + x];
          int g = o / Og;
          for (int ci = 0; ci < Cg; ci++)
            for (int ky = 0; ky < c->kh; ky++)
              for (int kx = 0; kx < c->kw; kx++) {
                int iy = y * c->sh - c->ph + ky * c->dh, ix = x * c->sw - c->pw + kx * c->dw;
                if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                size_t wi = ((size_t)(o * Cg + ci) * c->kh + ky) * c->kw + kx;
                size_t ii = ((size_t)(n * c->C + g * Cg + ci) * c->H + iy) * c->W + ix;
                bottom_diff[ii] += t * w[wi];
                weight_diff[wi] += t * in[ii];
              }
        }
}

static void fill_random(float *x, size_t n, cg_rng *rng) {
  for (size_t i = 0; i < n; i++) x[i] = cg_rng_gaussian(rng, 0, 1);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

static void test_conv_vs_naive(void) {
  static const conv_cfg cfgs[] = {
      {2, 3, 9, 8, 4, 1, 3, 3, 1, 1, 0, 0, 1, 1}, {2, 4, 9, 7, 6, 2, 3, 2, 2, 1, 1, 2, 1, 1},
      {1, 6, 11, 10, 3, 3, 3, 3, 2, 3, 2, 1, 2, 3}, {3, 2, 5, 6, 4, 2, 1, 1, 1, 1, 0, 0, 1, 1},
      {2, 4, 8, 8, 8, 4, 5, 3, 3, 2, 2, 1, 1, 2}, {1, 3, 12, 12, 5, 1, 1, 1, 2, 2, 1, 1, 1, 1},
  };
  cg_rng rng;
  cg_rng_seed(&rng, 7);
  for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
    const conv_cfg *c = &cfgs[t];
    char text[512], shape[64];
    snprintf(text, sizeof text,
             "type: \"Convolution\" convolution_param { num_output: %d group: %d kernel_h: %d kernel_w: %d stride_h: "
             "%d stride_w: %d pad_h: %d pad_w: %d dilation: %d dilation: %d }",
             c->O, c->G, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, c->dh, c->dw);
    snprintf(shape, sizeof shape, "%d %d %d %d", c->N, c->C, c->H, c->W);
    const char *shapes[] = {shape};
    fixture f;
    fixture_init(&f, text, shapes, 1, 1);
    CHECK_MSG(f.rc == 0, "%s: %s", text, cg_error_message());
    if (f.rc) {
      fixture_free(&f);
      continue;
    }
    int OH = (c->H + 2 * c->ph - (c->dh * (c->kh - 1) + 1)) / c->sh + 1;
    int OW = (c->W + 2 * c->pw - (c->dw * (c->kw - 1) + 1)) / c->sw + 1;
    check_shape4(f.top[0], c->N, c->O, OH, OW);
    fill_random(f.bottom[0]->data, f.bottom[0]->count, &rng);
    fill_random(f.l.params[0]->data, f.l.params[0]->count, &rng);
    fill_random(f.l.params[1]->data, f.l.params[1]->count, &rng);
    CHECK_EQ_INT(fixture_forward(&f), 0);
    size_t out_n = f.top[0]->count;
    float *want = malloc(out_n * sizeof(float));
    naive_conv(c, OH, OW, f.bottom[0]->data, f.l.params[0]->data, f.l.params[1]->data, want);
    CHECK_MSG(max_abs_diff(want, f.top[0]->data, out_n) < 1e-4, "conv config %zu forward differs by %g", t,
              max_abs_diff(want, f.top[0]->data, out_n));
    /* backward */
    fill_random(f.top[0]->diff, out_n, &rng);
    size_t wn = f.l.params[0]->count, bn = f.bottom[0]->count;
    float *wd = calloc(wn, sizeof(float)), *bd = malloc(bn * sizeof(float));
    memset(f.l.params[0]->diff, 0, wn * sizeof(float));
    bool prop[1] = {true};
    f.l.ops->backward(&f.l, f.top, prop, f.bottom);
    naive_conv_backward(c, OH, OW, f.bottom[0]->data, f.l.params[0]->data, f.top[0]->diff, bd, wd);
    CHECK_MSG(max_abs_diff(bd, f.bottom[0]->diff, bn) < 1e-4, "conv config %zu bottom diff differs by %g", t,
              max_abs_diff(bd, f.bottom[0]->diff, bn));
    CHECK_MSG(max_abs_diff(wd, f.l.params[0]->diff, wn) < 1e-3, "conv config %zu weight diff differs by %g", t,
              max_abs_diff(wd, f.l.params[0]->diff, wn));
    free(want), free(wd), free(bd);
    fixture_free(&f);
  }
}

/* Naive deconvolution: every input pixel scatters w[c, o', ky, kx] * in into the output. */
static void test_deconv_vs_naive(void) {
  static const conv_cfg cfgs[] = {
      /* N, C(in), H, W, O(num_output), G, kh, kw, sh, sw, ph, pw, dh, dw */
      {2, 3, 4, 5, 2, 1, 3, 3, 2, 2, 1, 1, 1, 1},
      {1, 4, 3, 3, 6, 2, 4, 2, 2, 1, 1, 0, 1, 2},
      {2, 2, 3, 4, 2, 1, 1, 1, 1, 1, 0, 0, 1, 1},
  };
  cg_rng rng;
  cg_rng_seed(&rng, 11);
  for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
    const conv_cfg *c = &cfgs[t];
    char text[512], shape[64];
    snprintf(text, sizeof text,
             "type: \"Deconvolution\" convolution_param { num_output: %d group: %d kernel_h: %d kernel_w: %d "
             "stride_h: %d stride_w: %d pad_h: %d pad_w: %d dilation: %d dilation: %d }",
             c->O, c->G, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, c->dh, c->dw);
    snprintf(shape, sizeof shape, "%d %d %d %d", c->N, c->C, c->H, c->W);
    const char *shapes[] = {shape};
    fixture f;
    fixture_init(&f, text, shapes, 1, 1);
    CHECK_MSG(f.rc == 0, "%s: %s", text, cg_error_message());
    if (f.rc) {
      fixture_free(&f);
      continue;
    }
    int OH = c->sh * (c->H - 1) + c->dh * (c->kh - 1) + 1 - 2 * c->ph;
    int OW = c->sw * (c->W - 1) + c->dw * (c->kw - 1) + 1 - 2 * c->pw;
    check_shape4(f.top[0], c->N, c->O, OH, OW);
    check_shape4(f.l.params[0], c->C, c->O / c->G, c->kh, c->kw);
    fill_random(f.bottom[0]->data, f.bottom[0]->count, &rng);
    fill_random(f.l.params[0]->data, f.l.params[0]->count, &rng);
    fill_random(f.l.params[1]->data, f.l.params[1]->count, &rng);
    CHECK_EQ_INT(fixture_forward(&f), 0);
    size_t out_n = f.top[0]->count;
    float *want = calloc(out_n, sizeof(float));
    const float *in = f.bottom[0]->data, *w = f.l.params[0]->data, *b = f.l.params[1]->data;
    int Cg = c->C / c->G, Og = c->O / c->G;
    for (int n = 0; n < c->N; n++) {
      for (int o = 0; o < c->O; o++)
        for (int i = 0; i < OH * OW; i++) want[((size_t)n * c->O + o) * OH * OW + i] = b[o];
      for (int ch = 0; ch < c->C; ch++)
        for (int y = 0; y < c->H; y++)
          for (int x = 0; x < c->W; x++) {
            float v = in[((n * c->C + ch) * c->H + y) * c->W + x];
            int g = ch / Cg;
            for (int oo = 0; oo < Og; oo++)
              for (int ky = 0; ky < c->kh; ky++)
                for (int kx = 0; kx < c->kw; kx++) {
                  int oy = y * c->sh - c->ph + ky * c->dh, ox = x * c->sw - c->pw + kx * c->dw;
                  if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                  want[((n * c->O + g * Og + oo) * OH + oy) * OW + ox] +=
                      w[((ch * Og + oo) * c->kh + ky) * c->kw + kx] * v;
                }
          }
    }
    CHECK_MSG(max_abs_diff(want, f.top[0]->data, out_n) < 1e-4, "deconv config %zu forward differs by %g", t,
              max_abs_diff(want, f.top[0]->data, out_n));
    free(want);
    fixture_free(&f);
  }
}

/* ---------- Pooling */

static void expect_pool_shape(const char *param, const char *shape, int h, int w) {
  char text[512];
  snprintf(text, sizeof text, "type: \"Pooling\" pooling_param { %s }", param);
  const char *shapes[] = {shape};
  fixture f;
  fixture_init(&f, text, shapes, 1, 1);
  CHECK_MSG(f.rc == 0, "%s: %s", text, cg_error_message());
  if (!f.rc) check_shape4(f.top[0], f.bottom[0]->shape[0], f.bottom[0]->shape[1], h, w);
  fixture_free(&f);
}

static void test_pool_shapes(void) {
  expect_pool_shape("pool: MAX kernel_size: 3 stride: 2", "1 1 6 6", 3, 3);            /* ceil(1.5) + 1 */
  expect_pool_shape("pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR", "1 1 6 6", 2, 2);
  expect_pool_shape("pool: MAX kernel_size: 3 stride: 2 pad: 1", "1 1 6 6", 4, 4);     /* ceil(2.5) + 1 */
  expect_pool_shape("pool: MAX kernel_size: 2 stride: 2 pad: 1", "1 1 5 5", 3, 3);     /* 4, last starts in pad: 3 */
  expect_pool_shape("pool: AVE kernel_size: 2 stride: 2 pad: 1", "1 1 6 6", 4, 4);     /* 4: (4-1)*2 = 6 < 7 */
  expect_pool_shape("pool: MAX kernel_size: 3 stride: 2", "2 96 55 55", 27, 27);       /* CaffeNet pool1 */
  expect_pool_shape("pool: MAX kernel_size: 3 stride: 2", "2 32 32 32", 16, 16);       /* CIFAR pool1: ceil */
  expect_pool_shape("pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2", "1 1 5 7", 3, 4);
  expect_pool_shape("pool: AVE global_pooling: true", "2 3 7 5", 1, 1);
  expect_error("type: \"Pooling\" pooling_param { pool: STOCHASTIC kernel_size: 2 }", "1 1 4 4", CG_ERR_UNSUPPORTED,
               "STOCHASTIC");
  expect_error("type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 pad: 2 }", "1 1 4 4", CG_ERR_INVALID,
               "smaller than the kernel");
  expect_error("type: \"Pooling\" pooling_param { pool: MAX }", "1 1 4 4", CG_ERR_INVALID, "kernel_size");
  expect_error("type: \"Pooling\" pooling_param { pool: MAX global_pooling: true kernel_size: 2 }", "1 1 4 4",
               CG_ERR_INVALID, "global_pooling");
  expect_error("type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 }", "1 4 4", CG_ERR_SHAPE, "4 axes");
}

static void test_pool_ave_divisor(void) {
  /* 4x4 ones, kernel 3, stride 2, pad 1: output 3x3; the divisor counts padding
   * but not what lies past height + pad. */
  const char *shapes[] = {"1 1 4 4"};
  fixture f;
  fixture_init(&f, "type: \"Pooling\" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }", shapes, 1, 1);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  for (size_t i = 0; i < 16; i++) f.bottom[0]->data[i] = 1;
  CHECK_EQ_INT(fixture_forward(&f), 0);
  check_shape4(f.top[0], 1, 1, 3, 3);
  /* windows: rows [-1,2) [1,4) [3,5) (clipped at height + pad = 5), same for columns */
  const float want[9] = {4.f / 9, 6.f / 9, 2.f / 6, 6.f / 9, 9.f / 9, 3.f / 6, 2.f / 6, 3.f / 6, 1.f / 4};
  for (int i = 0; i < 9; i++) CHECK_NEAR(f.top[0]->data[i], want[i], 1e-6);
  /* backward: each input gets top_diff / pool_size from every window it is in */
  for (int i = 0; i < 9; i++) f.top[0]->diff[i] = 1;
  bool prop[1] = {true};
  f.l.ops->backward(&f.l, f.top, prop, f.bottom);
  CHECK_NEAR(f.bottom[0]->diff[0], 1.f / 9, 1e-6);                    /* only window (0,0) */
  CHECK_NEAR(f.bottom[0]->diff[1 * 4 + 1], 1.f / 9 + 1.f / 9 + 1.f / 9 + 1.f / 9, 1e-6); /* (0,0),(0,1),(1,0),(1,1) */
  CHECK_NEAR(f.bottom[0]->diff[15], 1.f / 4 + 1.f / 6 + 1.f / 6 + 1.f / 9, 1e-6); /* (1,1),(1,2),(2,1),(2,2) */
  fixture_free(&f);

  /* 3x3 ones, kernel 3, stride 1, pad 1: corners 4/9, edges 6/9, centre 1 */
  const char *shapes3[] = {"1 1 3 3"};
  fixture_init(&f, "type: \"Pooling\" pooling_param { pool: AVE kernel_size: 3 stride: 1 pad: 1 }", shapes3, 1, 1);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  for (size_t i = 0; i < 9; i++) f.bottom[0]->data[i] = 1;
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 4.f / 9, 1e-6);
  CHECK_NEAR(f.top[0]->data[1], 6.f / 9, 1e-6);
  CHECK_NEAR(f.top[0]->data[4], 1, 1e-6);
  fixture_free(&f);
}

static void test_pool_max_ties_and_mask(void) {
  const char *shapes[] = {"1 1 2 4"};
  fixture f;
  fixture_init(&f, "type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 stride: 2 }", shapes, 1, 2);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  const float in[8] = {5, 5, 1, 7, 5, 2, 7, 7};
  set_data(f.bottom[0], in);
  CHECK_EQ_INT(fixture_forward(&f), 0);
  check_shape4(f.top[0], 1, 1, 1, 2);
  check_shape4(f.top[1], 1, 1, 1, 2);
  CHECK_NEAR(f.top[0]->data[0], 5, 0);
  CHECK_NEAR(f.top[0]->data[1], 7, 0);
  CHECK_NEAR(f.top[1]->data[0], 0, 0); /* first of the three 5s */
  CHECK_NEAR(f.top[1]->data[1], 3, 0); /* first of the three 7s (row-major) */
  f.top[0]->diff[0] = 2, f.top[0]->diff[1] = 3;
  bool prop[1] = {true};
  f.l.ops->backward(&f.l, f.top, prop, f.bottom);
  const float want[8] = {2, 0, 0, 3, 0, 0, 0, 0};
  for (int i = 0; i < 8; i++) CHECK_NEAR(f.bottom[0]->diff[i], want[i], 0);
  fixture_free(&f);

  /* overlapping windows send gradient to a shared maximum twice; global max pooling */
  const char *shapes2[] = {"1 2 3 3"};
  fixture_init(&f, "type: \"Pooling\" pooling_param { pool: MAX global_pooling: true }", shapes2, 1, 1);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  const float in2[18] = {1, 2, 3, 4, 9, 6, 7, 8, 0, -1, -2, -3, -4, -5, -6, -7, -8, -9};
  set_data(f.bottom[0], in2);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 9, 0);
  CHECK_NEAR(f.top[0]->data[1], -1, 0);
  fixture_free(&f);
  /* reshape follows a new input size (global kernel too) */
  fixture_init(&f, "type: \"Pooling\" pooling_param { pool: AVE global_pooling: true }", shapes2, 1, 1);
  cg_blob_reshape4(f.bottom[0], 1, 1, 2, 2);
  CHECK_EQ_INT(fixture_reshape(&f), 0);
  const float in3[4] = {1, 2, 3, 6};
  set_data(f.bottom[0], in3);
  fixture_forward(&f);
  check_shape4(f.top[0], 1, 1, 1, 1);
  CHECK_NEAR(f.top[0]->data[0], 3, 1e-6);
  fixture_free(&f);
}

/* Big inputs take the OpenMP paths of Pooling and LRN; each image must match the
 * same layer run serially on that image alone. */
static void compare_big_with_single(const char *text, int n, int c, int h, int w) {
  char big_shape[64], one_shape[64];
  snprintf(big_shape, sizeof big_shape, "%d %d %d %d", n, c, h, w);
  snprintf(one_shape, sizeof one_shape, "1 %d %d %d", c, h, w);
  const char *bs[] = {big_shape}, *os[] = {one_shape};
  fixture big, one;
  fixture_init(&big, text, bs, 1, 1);
  fixture_init(&one, text, os, 1, 1);
  CHECK_MSG(big.rc == 0 && one.rc == 0, "%s: %s", text, cg_error_message());
  if (!big.rc && !one.rc) {
    cg_rng rng;
    cg_rng_seed(&rng, 5);
    fill_random(big.bottom[0]->data, big.bottom[0]->count, &rng);
    fill_random(big.top[0]->diff, big.top[0]->count, &rng);
    fixture_forward(&big);
    bool prop[1] = {true};
    big.l.ops->backward(&big.l, big.top, prop, big.bottom);
    size_t in_dim = one.bottom[0]->count, out_dim = one.top[0]->count;
    double worst = 0;
    for (int i = 0; i < n; i++) {
      memcpy(one.bottom[0]->data, big.bottom[0]->data + i * in_dim, in_dim * sizeof(float));
      memcpy(one.top[0]->diff, big.top[0]->diff + i * out_dim, out_dim * sizeof(float));
      fixture_forward(&one);
      one.l.ops->backward(&one.l, one.top, prop, one.bottom);
      worst = fmax(worst, max_abs_diff(one.top[0]->data, big.top[0]->data + i * out_dim, out_dim));
      worst = fmax(worst, max_abs_diff(one.bottom[0]->diff, big.bottom[0]->diff + i * in_dim, in_dim));
    }
    CHECK_MSG(worst == 0, "%s: parallel and serial results differ by %g", text, worst);
  }
  fixture_free(&big);
  fixture_free(&one);
}

static void test_parallel_paths(void) {
  compare_big_with_single("type: \"Pooling\" pooling_param { pool: MAX kernel_size: 3 stride: 2 }", 8, 16, 96, 96);
  compare_big_with_single("type: \"Pooling\" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }", 8, 16, 96,
                          96);
  compare_big_with_single("type: \"LRN\" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }", 8, 16, 96, 96);
  compare_big_with_single("type: \"LRN\" lrn_param { local_size: 3 alpha: 0.00005 beta: 0.75 norm_region: "
                          "WITHIN_CHANNEL }",
                          8, 16, 96, 96);
}

/* ---------- InnerProduct */

static void test_inner_product(void) {
  const char *shapes[] = {"2 3"};
  fixture f;
  fixture_init(&f, "type: \"InnerProduct\" inner_product_param { num_output: 2 }", shapes, 1, 1);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  const float x[6] = {1, 2, 3, -1, 0, 2}, w[6] = {1, 0, -1, 2, 1, 0.5f}, b[2] = {0.25f, -1};
  set_data(f.bottom[0], x);
  set_data(f.l.params[0], w);
  set_data(f.l.params[1], b);
  fixture_forward(&f);
  CHECK_EQ_INT(f.top[0]->num_axes, 2);
  CHECK_EQ_INT(f.top[0]->shape[1], 2);
  CHECK_NEAR(f.top[0]->data[0], 1 - 3 + 0.25, 1e-6);
  CHECK_NEAR(f.top[0]->data[1], 2 + 2 + 1.5 - 1, 1e-6);
  CHECK_NEAR(f.top[0]->data[2], -1 - 2 + 0.25, 1e-6);
  CHECK_NEAR(f.top[0]->data[3], -2 + 1 - 1, 1e-6);
  fixture_free(&f);

  /* transpose: W is [K, N]; axis 2 keeps the leading axes */
  const char *shapes2[] = {"1 2 3"};
  fixture_init(&f, "type: \"InnerProduct\" inner_product_param { num_output: 2 axis: 2 transpose: true }", shapes2, 1,
               1);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  CHECK_EQ_INT(f.l.params[0]->shape[0], 3);
  CHECK_EQ_INT(f.l.params[0]->shape[1], 2);
  const float wt[6] = {1, 2, 0, 1, -1, 0.5f}; /* rows k, columns n */
  set_data(f.bottom[0], x);
  set_data(f.l.params[0], wt);
  set_data(f.l.params[1], b);
  fixture_forward(&f);
  CHECK_EQ_INT(f.top[0]->num_axes, 3);
  CHECK_EQ_INT(f.top[0]->shape[2], 2);
  CHECK_NEAR(f.top[0]->data[0], 1 * 1 + 2 * 0 + 3 * -1 + 0.25, 1e-6);
  CHECK_NEAR(f.top[0]->data[1], 1 * 2 + 2 * 1 + 3 * 0.5 - 1, 1e-6);
  CHECK_NEAR(f.top[0]->data[2], -1 * 1 + 0 + 2 * -1 + 0.25, 1e-6);
  CHECK_NEAR(f.top[0]->data[3], -1 * 2 + 0 + 2 * 0.5 - 1, 1e-6);
  fixture_free(&f);
  expect_error("type: \"InnerProduct\" inner_product_param { }", "2 3", CG_ERR_INVALID, "num_output");
}

/* ---------- LRN */

static void test_lrn(void) {
  const char *shapes[] = {"1 3 1 1"};
  fixture f;
  fixture_init(&f, "type: \"LRN\" lrn_param { local_size: 3 alpha: 1 beta: 0.75 }", shapes, 1, 1);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  const float x[3] = {1, 2, 3};
  set_data(f.bottom[0], x);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 0.4792073281847043, 1e-6);
  CHECK_NEAR(f.top[0]->data[1], 0.5445455905129597, 1e-6);
  CHECK_NEAR(f.top[0]->data[2], 0.8548151463580418, 1e-6);
  fixture_free(&f);

  const char *shapes2[] = {"1 1 2 2"};
  fixture_init(&f, "type: \"LRN\" lrn_param { local_size: 3 alpha: 1 beta: 0.75 norm_region: WITHIN_CHANNEL k: 5 }",
               shapes2, 1, 1);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  const float x2[4] = {1, 2, 3, 4};
  set_data(f.bottom[0], x2);
  fixture_forward(&f);
  /* every window covers the whole 2x2 plane: scale = 1 + 30/9 (k is not used here, as in Caffe) */
  const double want[4] = {0.3329533790702402, 0.6659067581404804, 0.9988601372107206, 1.3318135162809608};
  for (int i = 0; i < 4; i++) CHECK_NEAR(f.top[0]->data[i], want[i], 1e-6);
  fixture_free(&f);
  expect_error("type: \"LRN\" lrn_param { local_size: 4 }", "1 3 2 2", CG_ERR_INVALID, "odd");
}

/* ---------- Softmax and losses */

static void test_softmax(void) {
  const char *shapes[] = {"2 3"};
  fixture f;
  fixture_init(&f, "type: \"Softmax\"", shapes, 1, 1);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  const float x[6] = {1, 2, 3, 1000, 1001, 1002};
  set_data(f.bottom[0], x);
  fixture_forward(&f);
  const double want[3] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  for (int i = 0; i < 6; i++) CHECK_NEAR(f.top[0]->data[i], want[i % 3], 1e-6);
  fixture_free(&f);
}

static void test_softmax_loss(void) {
  const char *shapes[] = {"2 3", "2"};
  const float logits[6] = {1, 2, 3, 0, 0, 0}, labels[2] = {2, 0};
  const double l0 = 0.4076059644443803, l1 = 1.0986122886681098;
  static const struct {
    const char *param;
    double want;
  } cases[] = {
      {"", (l0 + l1) / 2},
      {"loss_param { normalization: NONE }", l0 + l1},
      {"loss_param { ignore_label: 0 }", l0},
      {"loss_param { ignore_label: 0 normalization: BATCH_SIZE }", l0 / 2},
      {"loss_param { ignore_label: 0 normalization: FULL }", l0 / 2},
      {"loss_param { ignore_label: 0 normalize: false }", l0 / 2},
      {"loss_param { ignore_label: 0 normalize: true }", l0},
      {"loss_param { ignore_label: 0 normalization: NONE normalize: true }", l0},
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    char text[256];
    snprintf(text, sizeof text, "type: \"SoftmaxWithLoss\" %s", cases[t].param);
    fixture f;
    fixture_init(&f, text, shapes, 2, 2);
    CHECK_MSG(f.rc == 0, "%s: %s", text, cg_error_message());
    if (f.rc) {
      fixture_free(&f);
      continue;
    }
    set_data(f.bottom[0], logits);
    set_data(f.bottom[1], labels);
    CHECK_EQ_INT(fixture_forward(&f), 0);
    CHECK_EQ_INT(f.top[0]->num_axes, 0);
    CHECK_MSG(fabs(f.top[0]->data[0] - cases[t].want) < 1e-5, "%s: loss %g, want %g", text, f.top[0]->data[0],
              cases[t].want);
    CHECK_NEAR(f.top[1]->data[2], 0.6652409557748219, 1e-6);
    CHECK_NEAR(f.top[1]->data[4], 1.0 / 3, 1e-6);
    fixture_free(&f);
  }
  /* backward: (p - onehot) * loss_weight / normalizer; ignored rows get zero */
  fixture f;
  fixture_init(&f, "type: \"SoftmaxWithLoss\" loss_param { ignore_label: 0 }", shapes, 2, 1);
  set_data(f.bottom[0], logits);
  set_data(f.bottom[1], labels);
  fixture_forward(&f);
  f.top[0]->diff[0] = 2;
  bool prop[2] = {true, false};
  f.l.ops->backward(&f.l, f.top, prop, f.bottom);
  CHECK_NEAR(f.bottom[0]->diff[0], 2 * 0.09003057317038046, 1e-6);
  CHECK_NEAR(f.bottom[0]->diff[2], 2 * (0.6652409557748219 - 1), 1e-6);
  CHECK_NEAR(f.bottom[0]->diff[3], 0, 0);
  fixture_free(&f);
  /* log(max(p, FLT_MIN)): a hopeless prediction costs -log(FLT_MIN), not infinity */
  const char *shapes1[] = {"1 2", "1"};
  fixture_init(&f, "type: \"SoftmaxWithLoss\"", shapes1, 2, 1);
  const float hopeless[2] = {0, 200}, zero[1] = {0};
  set_data(f.bottom[0], hopeless);
  set_data(f.bottom[1], zero);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 87.3365447505531, 1e-4);
  /* a label outside [0, C) is an error, not a crash */
  f.bottom[1]->data[0] = 2;
  CHECK_EQ_INT(fixture_forward(&f), CG_ERR_INVALID);
  CHECK_STR_CONTAINS(cg_error_message(), "label 2");
  fixture_free(&f);
  const char *bad[] = {"2 3", "3"};
  fixture_init(&f, "type: \"SoftmaxWithLoss\"", bad, 2, 1);
  CHECK_EQ_INT(f.rc, CG_ERR_SHAPE);
  fixture_free(&f);
}

static void test_other_losses(void) {
  const char *shapes[] = {"2 2", "2 2"};
  fixture f;
  fixture_init(&f, "type: \"EuclideanLoss\"", shapes, 2, 1);
  CHECK_EQ_INT(f.rc, 0);
  CHECK(f.l.ops->is_loss);
  const float a[4] = {1, 2, 3, 5}, b[4] = {0, 0, 1, 1};
  set_data(f.bottom[0], a);
  set_data(f.bottom[1], b);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 6.25, 1e-6);
  f.top[0]->diff[0] = 1;
  bool prop[2] = {true, true};
  f.l.ops->backward(&f.l, f.top, prop, f.bottom);
  CHECK_NEAR(f.bottom[0]->diff[3], 2, 1e-6);   /* (5 - 1) / num */
  CHECK_NEAR(f.bottom[1]->diff[3], -2, 1e-6);
  fixture_free(&f);

  const char *s2[] = {"2 1", "2 1"};
  fixture_init(&f, "type: \"SigmoidCrossEntropyLoss\"", s2, 2, 1);
  CHECK_EQ_INT(f.rc, 0);
  const float x[2] = {0, 2}, t[2] = {1, 0};
  set_data(f.bottom[0], x);
  set_data(f.bottom[1], t);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 1.410037595801459, 1e-6); /* default: divided by the batch size */
  fixture_free(&f);
  fixture_init(&f, "type: \"SigmoidCrossEntropyLoss\" loss_param { ignore_label: 0 normalization: VALID }", s2, 2, 1);
  set_data(f.bottom[0], x);
  set_data(f.bottom[1], t);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 0.6931471805599453, 1e-6);
  fixture_free(&f);

  const char *s3[] = {"1 3", "1"};
  const float hx[3] = {1, -0.5f, 0.2f}, hl[1] = {0};
  fixture_init(&f, "type: \"HingeLoss\"", s3, 2, 1);
  CHECK_EQ_INT(f.rc, 0);
  set_data(f.bottom[0], hx);
  set_data(f.bottom[1], hl);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 1.7, 1e-6);
  fixture_free(&f);
  fixture_init(&f, "type: \"HingeLoss\" hinge_loss_param { norm: L2 }", s3, 2, 1);
  set_data(f.bottom[0], hx);
  set_data(f.bottom[1], hl);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 1.69, 1e-6);
  fixture_free(&f);

  const float probs[3] = {0.5f, 0.25f, 0.25f}, ml[1] = {1};
  fixture_init(&f, "type: \"MultinomialLogisticLoss\"", s3, 2, 1);
  CHECK_EQ_INT(f.rc, 0);
  set_data(f.bottom[0], probs);
  set_data(f.bottom[1], ml);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], log(4.0), 1e-6);
  fixture_free(&f);
}

static void test_accuracy(void) {
  const char *shapes[] = {"3 3", "3"};
  const float scores[9] = {0.1f, 0.5f, 0.4f, 0.3f, 0.3f, 0.4f, 0.9f, 0.05f, 0.05f}, labels[3] = {2, 0, 0};
  fixture f;
  fixture_init(&f, "type: \"Accuracy\"", shapes, 2, 2);
  CHECK_EQ_INT(f.rc, 0);
  if (f.rc) {
    fixture_free(&f);
    return;
  }
  CHECK_EQ_INT(f.l.ops->no_backward_bottoms & 3u, 3);
  set_data(f.bottom[0], scores);
  set_data(f.bottom[1], labels);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 1.0 / 3, 1e-6); /* the tie at 0.3 counts against example 1 */
  CHECK_EQ_INT(f.top[1]->count, 3);
  CHECK_NEAR(f.top[1]->data[0], 0.5, 1e-6);
  CHECK_NEAR(f.top[1]->data[1], 0, 0);
  CHECK_NEAR(f.top[1]->data[2], 0, 0);
  fixture_free(&f);
  fixture_init(&f, "type: \"Accuracy\" accuracy_param { top_k: 2 }", shapes, 2, 1);
  set_data(f.bottom[0], scores);
  set_data(f.bottom[1], labels);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 2.0 / 3, 1e-6);
  fixture_free(&f);
  fixture_init(&f, "type: \"Accuracy\" accuracy_param { ignore_label: 2 }", shapes, 2, 1);
  set_data(f.bottom[0], scores);
  set_data(f.bottom[1], labels);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 0.5, 1e-6);
  fixture_free(&f);
  fixture_init(&f, "type: \"Accuracy\" accuracy_param { top_k: 4 }", shapes, 2, 1);
  CHECK_EQ_INT(f.rc, CG_ERR_INVALID);
  CHECK_STR_CONTAINS(cg_error_message(), "top_k");
  fixture_free(&f);
  /* spatial labels along axis 1: scores [1, 2, 2] (N, C, inner), labels [1, 2] */
  const char *sp[] = {"1 2 2", "1 2"};
  const float s2[4] = {0.2f, 0.9f, 0.8f, 0.1f}, l2[2] = {1, 1};
  fixture_init(&f, "type: \"Accuracy\"", sp, 2, 1);
  CHECK_EQ_INT(f.rc, 0);
  set_data(f.bottom[0], s2);
  set_data(f.bottom[1], l2);
  fixture_forward(&f);
  CHECK_NEAR(f.top[0]->data[0], 0.5, 1e-6); /* position 0: class 1 wins; position 1: class 0 wins */
  fixture_free(&f);
}

int main(void) {
  test_conv_known();
  test_conv_shapes_and_errors();
  test_conv_vs_naive();
  test_deconv_vs_naive();
  test_pool_shapes();
  test_pool_ave_divisor();
  test_pool_max_ties_and_mask();
  test_parallel_paths();
  test_inner_product();
  test_lrn();
  test_softmax();
  test_softmax_loss();
  test_other_losses();
  test_accuracy();
  return CHECK_REPORT();
}
