/* Direct single-channel convolution (see conv_single.h). Each kernel holds a tile
 * of accumulators in registers: forward, 4 output channels x 24 columns, one
 * broadcast weight per tap against 3 loaded input vectors; the weight gradient,
 * 2 output channels x up to 5 taps of one kernel row, summed over every row of a
 * share of the batch's images and reduced across lanes once at the end. */
#include "math/conv_single.h"

#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* Built for AVX2 and FMA whatever the build's -march (the sanitizer build has none),
 * and used where the CPU has them. */
#define KERNEL __attribute__((target("avx2,fma")))

enum { LANES = 8, COL_VECS = 3, OC_BLOCK = 4, GRAD_OC = 2, GRAD_TAPS = 5 };

bool cg_conv_single_available(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

/* The first n lanes, n clipped to [0, LANES]. Masked loads never touch the lanes
 * left out, so tiles at the right edge read nothing past the image. */
KERNEL
static inline __m256i first_lanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

typedef struct geometry {
  int H, W, OH, OW, KH, KW, taps;
  size_t plane; /* OH * OW */
} geometry;

static geometry geometry_of(const cg_conv_single_shape *s) {
  geometry g = {s->height, s->width, s->height - s->kernel_h + 1, s->width - s->kernel_w + 1, s->kernel_h,
                s->kernel_w, s->kernel_h * s->kernel_w, 0};
  g.plane = (size_t)g.OH * g.OW;
  return g;
}

/* Outputs [x0, x0 + cols) of row y for channels [oc, oc + OCB) of one image, cols <= 24.
 * OCB and NV (vectors of columns) are constants where this is inlined; a tile at the
 * right edge (MASKED) loads and stores only its first cols lanes. */
KERNEL
static inline __attribute__((always_inline)) void forward_tile(const geometry *g, const float *img, const float *w,
                                                               const float *bias, int y, int x0, int cols,
                                                               float *out, int OCB, int NV, bool MASKED) {
  const int KH = g->KH, KW = g->KW, W = g->W, taps = g->taps;
  __m256 acc[OC_BLOCK][COL_VECS];
  for (int o = 0; o < OCB; o++)
    for (int v = 0; v < NV; v++) acc[o][v] = _mm256_set1_ps(bias ? bias[o] : 0.0f);
  const float *row = img + (size_t)y * W + x0;
  for (int i = 0; i < KH; i++, row += W, w += KW)
    for (int j = 0; j < KW; j++) {
      __m256 in[COL_VECS];
      for (int v = 0; v < NV; v++)
        in[v] = MASKED ? _mm256_maskload_ps(row + j + v * LANES, first_lanes(cols - v * LANES))
                       : _mm256_loadu_ps(row + j + v * LANES);
      for (int o = 0; o < OCB; o++) {
        __m256 wb = _mm256_broadcast_ss(w + (size_t)o * taps + j);
        for (int v = 0; v < NV; v++) acc[o][v] = _mm256_fmadd_ps(in[v], wb, acc[o][v]);
      }
    }
  for (int o = 0; o < OCB; o++)
    for (int v = 0; v < NV; v++) {
      float *dst = out + o * g->plane + (size_t)y * g->OW + x0 + v * LANES;
      if (MASKED)
        _mm256_maskstore_ps(dst, first_lanes(cols - v * LANES), acc[o][v]);
      else
        _mm256_storeu_ps(dst, acc[o][v]);
    }
}

/* A whole tile of 4 channels x 24 columns, the common case, written out so that
 * its 12 accumulators stay in registers (as an array, gcc kept storing them back). */
KERNEL
static void forward_full_4(const geometry *g, const float *img, const float *w, const float *bias, int y, int x0,
                           float *out) {
  const int KH = g->KH, KW = g->KW, W = g->W;
  const size_t taps = (size_t)g->taps;
  __m256 a00, a01, a02, a10, a11, a12, a20, a21, a22, a30, a31, a32;
  a00 = a01 = a02 = _mm256_set1_ps(bias ? bias[0] : 0.0f);
  a10 = a11 = a12 = _mm256_set1_ps(bias ? bias[1] : 0.0f);
  a20 = a21 = a22 = _mm256_set1_ps(bias ? bias[2] : 0.0f);
  a30 = a31 = a32 = _mm256_set1_ps(bias ? bias[3] : 0.0f);
  const float *origin = img + (size_t)y * W + x0;
  /* the taps as one loop (a 5-step loop per kernel row would end, and mispredict, every 5) */
  for (int t = 0, i = 0, j = 0; t < KH * KW; t++, j = j + 1 == KW ? 0 : j + 1, i += j == 0) {
    const float *row = origin + (size_t)i * W + j;
    __m256 in0 = _mm256_loadu_ps(row), in1 = _mm256_loadu_ps(row + LANES), in2 = _mm256_loadu_ps(row + 2 * LANES);
    __m256 wb = _mm256_broadcast_ss(w + t);
    a00 = _mm256_fmadd_ps(in0, wb, a00), a01 = _mm256_fmadd_ps(in1, wb, a01), a02 = _mm256_fmadd_ps(in2, wb, a02);
    wb = _mm256_broadcast_ss(w + taps + t);
    a10 = _mm256_fmadd_ps(in0, wb, a10), a11 = _mm256_fmadd_ps(in1, wb, a11), a12 = _mm256_fmadd_ps(in2, wb, a12);
    wb = _mm256_broadcast_ss(w + 2 * taps + t);
    a20 = _mm256_fmadd_ps(in0, wb, a20), a21 = _mm256_fmadd_ps(in1, wb, a21), a22 = _mm256_fmadd_ps(in2, wb, a22);
    wb = _mm256_broadcast_ss(w + 3 * taps + t);
    a30 = _mm256_fmadd_ps(in0, wb, a30), a31 = _mm256_fmadd_ps(in1, wb, a31), a32 = _mm256_fmadd_ps(in2, wb, a32);
  }
  float *o = out + (size_t)y * g->OW + x0;
  const __m256 acc[4][3] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
  for (int c = 0; c < 4; c++)
    for (int v = 0; v < 3; v++) _mm256_storeu_ps(o + c * g->plane + v * LANES, acc[c][v]);
}

/* the other tiles: a lone channel, or an edge of up to 8 columns */
KERNEL
static void forward_full_1(const geometry *g, const float *img, const float *w, const float *bias, int y, int x0,
                           float *out) {
  forward_tile(g, img, w, bias, y, x0, COL_VECS * LANES, out, 1, COL_VECS, false);
}
KERNEL
static void forward_edge_4(const geometry *g, const float *img, const float *w, const float *bias, int y, int x0,
                           int cols, float *out) {
  forward_tile(g, img, w, bias, y, x0, cols, out, OC_BLOCK, 1, true);
}
KERNEL
static void forward_edge_1(const geometry *g, const float *img, const float *w, const float *bias, int y, int x0,
                           int cols, float *out) {
  forward_tile(g, img, w, bias, y, x0, cols, out, 1, 1, true);
}

KERNEL
void cg_conv_single_forward(const cg_conv_single_shape *s, const float *bottom, const float *weight,
                            const float *bias, float *top) {
  const geometry g = geometry_of(s);
  const int span = COL_VECS * LANES;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < s->num; n++) {
    const float *img = bottom + (size_t)n * g.H * g.W;
    float *out = top + (size_t)n * s->num_output * g.plane;
    for (int y = 0; y < g.OH; y++)
      for (int oc = 0; oc < s->num_output;) {
        bool four = s->num_output - oc >= OC_BLOCK;
        const float *w = weight + (size_t)oc * g.taps, *b = bias ? bias + oc : NULL;
        float *o = out + oc * g.plane;
        int x0 = 0;
        for (; x0 + span <= g.OW; x0 += span)
          if (four)
            forward_full_4(&g, img, w, b, y, x0, o);
          else
            forward_full_1(&g, img, w, b, y, x0, o);
        for (; x0 < g.OW; x0 += LANES) {
          int cols = g.OW - x0 < LANES ? g.OW - x0 : LANES;
          if (four)
            forward_edge_4(&g, img, w, b, y, x0, cols, o);
          else
            forward_edge_1(&g, img, w, b, y, x0, cols, o);
        }
        oc += four ? OC_BLOCK : 1;
      }
  }
}

KERNEL
static inline float lane_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* The weight gradient of 2 channels x 5 taps (kernel row i, columns j0..j0+4) over
 * the batch, named accumulators for the same reason as forward_full_4; whole
 * vectors of columns with plain loads, the right edge masked. */
KERNEL
static void grad_2x5(const cg_conv_single_shape *s, const geometry *g, const float *bottom, const float *top_diff,
                     int oc, int i, int j0, float *weight_diff) {
  const int W = g->W, OW = g->OW, OH = g->OH, whole = OW / LANES * LANES;
  const size_t plane = g->plane;
  const __m256i edge = first_lanes(OW - whole);
  __m256 p00 = _mm256_setzero_ps(), p01 = p00, p02 = p00, p03 = p00, p04 = p00;
  __m256 p10 = p00, p11 = p00, p12 = p00, p13 = p00, p14 = p00;
  /* rows innermost: a loop of OH steps, where one of OW / 8 would end (and mispredict) every few */
  for (int n = 0; n < s->num; n++) {
    const float *img = bottom + (size_t)n * g->H * W + (size_t)i * W + j0;
    const float *td = top_diff + ((size_t)n * s->num_output + oc) * plane;
/* one vector of columns at x0 of output row y: LOAD(ptr) is a plain or a masked load */
#define GRAD_2X5_STEP(LOAD, x0)                                                                             \
  do {                                                                                                      \
    const float *row = img + (size_t)y * W + (x0), *trow = td + (size_t)y * OW + (x0);                      \
    __m256 t0 = LOAD(trow), t1 = LOAD(trow + plane), v = LOAD(row);                                         \
    p00 = _mm256_fmadd_ps(t0, v, p00), p10 = _mm256_fmadd_ps(t1, v, p10);                                   \
    v = LOAD(row + 1);                                                                                      \
    p01 = _mm256_fmadd_ps(t0, v, p01), p11 = _mm256_fmadd_ps(t1, v, p11);                                   \
    v = LOAD(row + 2);                                                                                      \
    p02 = _mm256_fmadd_ps(t0, v, p02), p12 = _mm256_fmadd_ps(t1, v, p12);                                   \
    v = LOAD(row + 3);                                                                                      \
    p03 = _mm256_fmadd_ps(t0, v, p03), p13 = _mm256_fmadd_ps(t1, v, p13);                                   \
    v = LOAD(row + 4);                                                                                      \
    p04 = _mm256_fmadd_ps(t0, v, p04), p14 = _mm256_fmadd_ps(t1, v, p14);                                   \
  } while (0)
#define EDGE_LOAD(ptr) _mm256_maskload_ps((ptr), edge)
    for (int x0 = 0; x0 < whole; x0 += LANES)
      for (int y = 0; y < OH; y++) GRAD_2X5_STEP(_mm256_loadu_ps, x0);
    if (whole < OW)
      for (int y = 0; y < OH; y++) GRAD_2X5_STEP(EDGE_LOAD, whole);
#undef EDGE_LOAD
#undef GRAD_2X5_STEP
  }
  const __m256 p[2][5] = {{p00, p01, p02, p03, p04}, {p10, p11, p12, p13, p14}};
  for (int o = 0; o < 2; o++)
    for (int j = 0; j < 5; j++) weight_diff[(size_t)(oc + o) * g->taps + i * g->KW + j0 + j] += lane_sum(p[o][j]);
}

/* Any other block (a lone channel, fewer than 5 taps): one tap of one channel at a time. */
KERNEL
static void grad_one(const cg_conv_single_shape *s, const geometry *g, const float *bottom, const float *top_diff,
                     int oc, int i, int j, float *weight_diff) {
  const int W = g->W, OW = g->OW;
  __m256 p = _mm256_setzero_ps();
  for (int n = 0; n < s->num; n++) {
    const float *img = bottom + (size_t)n * g->H * W + (size_t)i * W + j;
    const float *td = top_diff + ((size_t)n * s->num_output + oc) * g->plane;
    for (int y = 0; y < g->OH; y++)
      for (int x0 = 0; x0 < OW; x0 += LANES) {
        __m256i m = first_lanes(OW - x0);
        p = _mm256_fmadd_ps(_mm256_maskload_ps(td + (size_t)y * OW + x0, m),
                            _mm256_maskload_ps(img + (size_t)y * W + x0, m), p);
      }
  }
  weight_diff[(size_t)oc * g->taps + i * g->KW + j] += lane_sum(p);
}

/* bias_diff[oc] += the sum of that channel's top diff, images in order */
KERNEL
static void bias_grad(const cg_conv_single_shape *s, const geometry *g, const float *top_diff, int oc,
                      float *bias_diff) {
  __m256 acc = _mm256_setzero_ps();
  for (int n = 0; n < s->num; n++) {
    const float *td = top_diff + ((size_t)n * s->num_output + oc) * g->plane;
    for (size_t x0 = 0; x0 < g->plane; x0 += LANES)
      acc = _mm256_add_ps(acc, _mm256_maskload_ps(td + x0, first_lanes((int)(g->plane - x0 < LANES ? g->plane - x0
                                                                                                : LANES))));
  }
  bias_diff[oc] += lane_sum(acc);
}

/* All of one batch's gradient blocks, on the calling thread. */
KERNEL
static void grad_batch(const cg_conv_single_shape *s, const geometry *g, const float *bottom, const float *top_diff,
                       float *weight_diff, float *bias_diff) {
  for (int oc = 0; oc < s->num_output; oc += GRAD_OC) {
    int noc = s->num_output - oc < GRAD_OC ? s->num_output - oc : GRAD_OC;
    for (int i = 0; i < g->KH; i++)
      for (int j0 = 0; j0 < g->KW; j0 += GRAD_TAPS) {
        int nt = g->KW - j0 < GRAD_TAPS ? g->KW - j0 : GRAD_TAPS;
        if (noc == GRAD_OC && nt == GRAD_TAPS)
          grad_2x5(s, g, bottom, top_diff, oc, i, j0, weight_diff);
        else
          for (int o = 0; o < noc; o++)
            for (int j = 0; j < nt; j++) grad_one(s, g, bottom, top_diff, oc + o, i, j0 + j, weight_diff);
      }
  }
  if (bias_diff)
    for (int oc = 0; oc < s->num_output; oc++) bias_grad(s, g, top_diff, oc, bias_diff);
}

/* The batch is cut into SHARES consecutive runs of images, each summed on its own and
 * then added in order: the sums do not depend on how many threads run them (the CLI
 * and the Python module run different counts, and train bit for bit alike). The
 * threads take whole runs in order, the images they computed forward and that the
 * layer above (pooling, split by images too) wrote the top diff of; split by output
 * channels instead, the threads read each other's caches and the net was 0.1 ms slower. */
enum { SHARES = 8 };

static size_t share_floats(const cg_conv_single_shape *s) {
  return (size_t)s->num_output * s->kernel_h * s->kernel_w + (size_t)s->num_output;
}

size_t cg_conv_single_grad_scratch(const cg_conv_single_shape *s) { return SHARES * share_floats(s); }

KERNEL
void cg_conv_single_param_grad(const cg_conv_single_shape *s, const float *bottom, const float *top_diff,
                               float *scratch, float *weight_diff, float *bias_diff) {
  const geometry g = geometry_of(s);
  const int parts = s->num < SHARES ? s->num : SHARES;
  const size_t per_part = share_floats(s);
  float *partial = scratch;
  memset(partial, 0, parts * per_part * sizeof(float));
#pragma omp parallel for schedule(static)
  for (int p = 0; p < parts; p++) {
    int n0 = (int)((long long)s->num * p / parts), n1 = (int)((long long)s->num * (p + 1) / parts);
    cg_conv_single_shape share = *s;
    share.num = n1 - n0;
    float *w = partial + p * per_part;
    grad_batch(&share, &g, bottom + (size_t)n0 * g.H * g.W, top_diff + (size_t)n0 * s->num_output * g.plane, w,
               bias_diff ? w + (size_t)s->num_output * g.taps : NULL);
  }
  for (int p = 0; p < parts; p++) {
    const float *w = partial + p * per_part;
    for (size_t k = 0; k < (size_t)s->num_output * g.taps; k++) weight_diff[k] += w[k];
    if (bias_diff)
      for (int oc = 0; oc < s->num_output; oc++) bias_diff[oc] += w[(size_t)s->num_output * g.taps + oc];
  }
}

#else /* not x86: callers use oneDNN or im2col + gemm */

bool cg_conv_single_available(void) { return false; }

void cg_conv_single_forward(const cg_conv_single_shape *s, const float *bottom, const float *weight,
                            const float *bias, float *top) {
  (void)s, (void)bottom, (void)weight, (void)bias, (void)top;
}

size_t cg_conv_single_grad_scratch(const cg_conv_single_shape *s) {
  (void)s;
  return 0;
}

void cg_conv_single_param_grad(const cg_conv_single_shape *s, const float *bottom, const float *top_diff,
                               float *scratch, float *weight_diff, float *bias_diff) {
  (void)s, (void)bottom, (void)top_diff, (void)scratch, (void)weight_diff, (void)bias_diff;
}

#endif
