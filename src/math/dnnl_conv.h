/* 2-d convolution through oneDNN (Debian's libdnnl, the library PyTorch's CPU
 * convolutions use): forward, data gradient and weight/bias gradient on NCHW
 * blobs with Caffe's weight layout [out, in / group, kh, kw]. The layout oneDNN
 * prefers (blocked channels) lives inside; reorders run on the way in and out.
 * The im2col + gemm kernels (src/layers/conv.c) stay as the reference and the
 * fallback for what this does not take (1-d, deconvolution, negative right pad). */
#ifndef CG_MATH_DNNL_CONV_H
#define CG_MATH_DNNL_CONV_H

#include <stdbool.h>

#include "math/backend.h"

typedef struct cg_dnnl_conv cg_dnnl_conv;

/* The shape, as every convolution kernel sees it (math/backend.h). */
typedef cg_conv_shape cg_dnnl_conv_shape;

/* Builds the primitives for one shape into *out. *out is NULL (and CG_OK is
 * returned) when oneDNN cannot take the shape as Caffe defines it: the caller
 * falls back to im2col + gemm. Free with cg_dnnl_conv_free (NULL is fine).
 * Primitives are built for, and run with, as many OpenMP threads as OpenBLAS
 * has, so both halves of a net use the cores the same way. */
int cg_dnnl_conv_create(const cg_dnnl_conv_shape *shape, cg_dnnl_conv **out);
void cg_dnnl_conv_free(cg_dnnl_conv *c);

/* top = conv(bottom, weight) + bias (bias NULL when the shape has none). */
int cg_dnnl_conv_forward(cg_dnnl_conv *c, const float *bottom, const float *weight, const float *bias, float *top);
/* weight_diff += dL/dW, bias_diff += dL/db (when not NULL), and bottom_diff =
 * dL/dbottom when not NULL (overwritten, as Caffe's bottom gradients are). */
int cg_dnnl_conv_backward(cg_dnnl_conv *c, const float *bottom, const float *top_diff, const float *weight,
                          float *weight_diff, float *bias_diff, float *bottom_diff);

#endif
