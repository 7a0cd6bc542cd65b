/* The CPU backend's kernels as backend tables: gemms through oneDNN or OpenBLAS,
 * convolutions through the direct single-channel kernels (conv_single.c) and
 * oneDNN (dnnl_conv.c). */
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "math/backend.h"
#include "math/conv_single.h"
#include "math/dnnl_conv.h"
#include "math/math.h"
#include "math/threads.h"

void cg_cpu_gemm_openblas(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
              alpha, A, lda, B, ldb, beta, C, ldc);
}

/* oneDNN's sgemm on the OpenMP threads its convolutions use (math/threads.h);
 * OpenBLAS's should oneDNN refuse a call. */
void cg_cpu_gemm_onednn(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
  int saved = cg_math_threads_enter(cg_math_threads());
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  cg_math_threads_leave(saved);
  if (st != dnnl_success) cg_cpu_gemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- one input channel, stride 1, no pad or dilation (LeNet's conv1: 0.8 ms through
 * oneDNN forward + backward, 0.4 direct) ---- */

typedef struct single_state {
  const cg_backend *backend;
  cg_conv_shape shape;
  cg_conv_single_shape single;
  float *scratch; /* the weight gradient's per-share sums */
  float *col;     /* one image's columns, for the bottom gradient a first layer never needs */
} single_state;

static void single_free(void *state) {
  single_state *s = state;
  if (!s) return;
  free(s->scratch);
  free(s->col);
  free(s);
}

static int single_create(const cg_backend *backend, const cg_conv_shape *sh, void **state) {
  *state = NULL;
  if (!cg_conv_single_available() || sh->channels != 1 || sh->group != 1 || sh->stride_h != 1 || sh->stride_w != 1 ||
      sh->pad_h != 0 || sh->pad_w != 0 || sh->dilation_h != 1 || sh->dilation_w != 1)
    return CG_OK;
  single_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  s->backend = backend;
  s->shape = *sh;
  s->single = (cg_conv_single_shape){.num = sh->num, .height = sh->height, .width = sh->width,
                                     .num_output = sh->num_output, .kernel_h = sh->kernel_h, .kernel_w = sh->kernel_w};
  size_t scratch = cg_conv_single_grad_scratch(&s->single);
  size_t col = (size_t)sh->kernel_h * sh->kernel_w * sh->out_height * sh->out_width;
  s->scratch = malloc((scratch ? scratch : 1) * sizeof(float));
  s->col = malloc((col ? col : 1) * sizeof(float));
  if (!s->scratch || !s->col) {
    single_free(s);
    return cg_error(CG_ERR_NOMEM, "out of memory for a %dx%d convolution's buffers", sh->kernel_h, sh->kernel_w);
  }
  *state = s;
  return CG_OK;
}

static int single_forward(void *state, const float *bottom, const float *weight, const float *bias, float *top) {
  single_state *s = state;
  cg_conv_single_forward(&s->single, bottom, weight, bias, top);
  return CG_OK;
}

/* bottom_diff image by image: col = W^T top_diff, then col2im (the reference path's order) */
static int single_backward(void *state, const float *bottom, const float *top_diff, const float *weight,
                           float *weight_diff, float *bias_diff, float *bottom_diff) {
  single_state *s = state;
  const cg_conv_shape *sh = &s->shape;
  cg_conv_single_param_grad(&s->single, bottom, top_diff, s->scratch, weight_diff, bias_diff);
  if (!bottom_diff) return CG_OK;
  bool is_1x1 = sh->kernel_h == 1 && sh->kernel_w == 1;
  int k = sh->kernel_h * sh->kernel_w, n = sh->out_height * sh->out_width, m = sh->num_output;
  size_t bottom_dim = (size_t)sh->height * sh->width, top_dim = (size_t)m * n;
  for (int i = 0; i < sh->num; i++) {
    float *im = bottom_diff + i * bottom_dim, *col = is_1x1 ? im : s->col;
    cg_backend_gemm(s->backend, true, false, k, n, m, 1.0f, weight, top_diff + i * top_dim, 0.0f, col);
    if (is_1x1) continue;
    memset(im, 0, bottom_dim * sizeof(float));
    cg_col2im_ld(col, (size_t)n, 1, sh->height, sh->width, sh->kernel_h, sh->kernel_w, 0, 0, 1, 1, 1, 1, im);
  }
  return CG_OK;
}

const cg_conv_kernel_ops cg_conv_kernel_single = {
    .name = "direct single-channel",
    .create = single_create,
    .forward = single_forward,
    .backward = single_backward,
    .free = single_free,
};

/* ---- oneDNN ---- */

static int onednn_create(const cg_backend *backend, const cg_conv_shape *shape, void **state) {
  (void)backend;
  cg_dnnl_conv *c = NULL;
  int rc = cg_dnnl_conv_create(shape, &c);
  *state = c;
  return rc;
}

static int onednn_forward(void *state, const float *bottom, const float *weight, const float *bias, float *top) {
  return cg_dnnl_conv_forward(state, bottom, weight, bias, top);
}

static int onednn_backward(void *state, const float *bottom, const float *top_diff, const float *weight,
                           float *weight_diff, float *bias_diff, float *bottom_diff) {
  return cg_dnnl_conv_backward(state, bottom, top_diff, weight, weight_diff, bias_diff, bottom_diff);
}

static void onednn_free(void *state) { cg_dnnl_conv_free(state); }

const cg_conv_kernel_ops cg_conv_kernel_onednn = {
    .name = "oneDNN",
    .create = onednn_create,
    .forward = onednn_forward,
    .backward = onednn_backward,
    .free = onednn_free,
};
