/* A math backend: the table of kernels a net's layers compute with, chosen per net
 * (cg_net_options.backend). Layers call their backend, never oneDNN or OpenBLAS
 * directly, so another backend (CUDA) slots in as one more table in backend.c's
 * list. Everything here is read-only once chosen; the tables are static. */
#ifndef CG_MATH_BACKEND_H
#define CG_MATH_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "caffegrid/runtime.h"

typedef struct cg_backend cg_backend;

/* One 2-d convolution (NCHW, Caffe's weight layout [out, in / group, kh, kw]). */
typedef struct cg_conv_shape {
  int num, channels, height, width;      /* bottom */
  int num_output, out_height, out_width; /* top */
  int group, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  bool bias;
} cg_conv_shape;

/* A convolution kernel. create leaves *state NULL (and returns CG_OK) when it does
 * not take the shape; the layer then tries the next kernel, and after the last
 * computes by im2col + the backend's gemm (the reference). */
typedef struct cg_conv_kernel_ops {
  const char *name;
  int (*create)(const cg_backend *backend, const cg_conv_shape *shape, void **state);
  /* top = conv(bottom, weight) + bias (bias NULL when the shape has none) */
  int (*forward)(void *state, const float *bottom, const float *weight, const float *bias, float *top);
  /* weight_diff += dL/dW, bias_diff += dL/db (when not NULL), bottom_diff = dL/dbottom
   * when not NULL (overwritten, as Caffe's bottom gradients are) */
  int (*backward)(void *state, const float *bottom, const float *top_diff, const float *weight, float *weight_diff,
                  float *bias_diff, float *bottom_diff);
  void (*free)(void *state);
} cg_conv_kernel_ops;

/* C = alpha * op(A) * op(B) + beta * C, row-major, with leading dimensions. */
typedef void (*cg_gemm_fn)(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc);

struct cg_backend {
  const char *name;
  cg_gemm_fn gemm;
  const cg_conv_kernel_ops *const *conv; /* tried in order, NULL-terminated */
};

/* The backend for these options (NULL or zeroed: the process-wide defaults). An
 * unknown name is an error listing the known ones. */
int cg_backend_select(const cg_backend_options *options, const cg_backend **out);
/* The process-wide default (for layers built outside a net, in tests). */
const cg_backend *cg_backend_default(void);

/* The backend's gemm, with or without explicit leading dimensions. */
void cg_backend_gemm(const cg_backend *b, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                     const float *B, float beta, float *C);
void cg_backend_gemm_ld(const cg_backend *b, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* The CPU backend's pieces (backend_cpu.c). */
void cg_cpu_gemm_onednn(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc);
void cg_cpu_gemm_openblas(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc);
extern const cg_conv_kernel_ops cg_conv_kernel_single; /* math/conv_single.h: one input channel, stride 1 */
extern const cg_conv_kernel_ops cg_conv_kernel_onednn; /* math/dnnl_conv.h */

#endif
