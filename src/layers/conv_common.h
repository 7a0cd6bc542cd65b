/* What Convolution and Deconvolution share (Caffe's BaseConvolutionLayer):
 * parameter parsing, parameter declaration, output shapes, and the per-image
 * im2col + gemm kernels. Defined in conv.c; internal to src/layers. */
#ifndef CG_LAYERS_CONV_COMMON_H
#define CG_LAYERS_CONV_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include "core/layer.h"

/* One convolution seen the way the gemm kernels see it. The "image" side goes
 * through im2col (the bottom of a Convolution, the top of a Deconvolution); the
 * "column" side is the gemm output (top of a Convolution, bottom of a Deconvolution).
 * 1-d convolutions are stored as 2-d with height 1. */
typedef struct cg_conv_state {
  bool deconv;
  int axis;          /* canonical channel axis; images = count(0, axis) */
  int num_spatial;   /* 1 or 2 spatial axes after the channel axis */
  int num_output, group, channels; /* channels = bottom channels */
  bool bias_term;
  int kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
  bool is_1x1;       /* 1x1 kernel, stride 1, no pad: im2col is the identity */
  /* set by reshape */
  int num;                      /* images per blob */
  int im_channels, im_h, im_w;  /* image side (im2col input) */
  int col_channels, col_h, col_w; /* column side (gemm output channels and spatial size) */
  int kernel_dim;               /* im_channels / group * kernel_h * kernel_w */
  float *col;                   /* [kernel_dim * group, col_h * col_w] */
  size_t col_capacity;
  /* Convolution's batched path: `batch` images side by side per gemm */
  int batch;                    /* images per chunk (1: gemm straight into the blobs) */
  float *bcol;                  /* [kernel_dim * group, batch * col spatial] */
  size_t bcol_capacity;
  float *btop;                  /* [col_channels, batch * col spatial]: the top (diff) of a chunk */
  size_t btop_capacity;
  const struct cg_backend *backend; /* the layer's: its gemm, and its convolution kernels */
  /* Convolution through one of the backend's kernels when one takes the shape; NULL: im2col + gemm */
  const struct cg_conv_kernel_ops *kernel;
  void *kernel_state;
  int built_num, built_h, built_w; /* the bottom shape (images, height, width) the kernel was built for */
} cg_conv_state;

/* Parses convolution_param, checks it against bottom[0], declares the weight
 * [conv_out, conv_in / group, kh, kw] and (bias_term) bias [num_output] blobs and
 * allocates l->priv. For Deconvolution the weight is [channels, num_output / group, kh, kw]. */
int cg_conv_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top, bool deconv);
/* Shapes every top from its bottom and sizes the column buffer. */
int cg_conv_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top);
void cg_conv_destroy(cg_layer *l);

/* The per-image kernels below are what Deconvolution runs and the reference the
 * batched Convolution path (conv.c) is tested against. */
/* One image: col_out[col_channels, col spatial] = W * im2col(im). */
void cg_conv_im_to_col_side(cg_conv_state *s, const float *im, const float *weight, float *col_out);
/* One image: im[im_channels, im spatial] = col2im(W^T * col_in) (overwrites im). */
void cg_conv_col_side_to_im(cg_conv_state *s, const float *col_in, const float *weight, float *im);
/* One image: weight_diff += col_in * im2col(im)^T. */
void cg_conv_weight_grad(cg_conv_state *s, const float *im, const float *col_in, float *weight_diff);
/* One image of the top: out[c, spatial] += bias[c]. */
void cg_conv_add_bias(int channels, int spatial, const float *bias, float *out);
/* One image of the top: bias_diff[c] += sum over spatial of top_diff[c, spatial], in a fixed order. */
void cg_conv_bias_grad(int channels, int spatial, const float *top_diff, float *bias_diff);

/* Convolution's batched path over images [n0, n0 + nb) (nb <= s->batch):
 * forward writes top = W * im2col(bottom) + bias; backward adds the weight
 * gradient and, when bottom_diff is not NULL, overwrites the bottom gradient.
 * The column buffers of several images lie side by side so one gemm per group
 * covers the chunk; the weight gradient is one gemm over nb * spatial columns. */
void cg_conv_forward_batch(cg_conv_state *s, const float *bottom, const float *weight, const float *bias, float *top,
                           int nb);
void cg_conv_backward_batch(cg_conv_state *s, const float *bottom, const float *top_diff, const float *weight,
                            float *weight_diff, float *bottom_diff, int nb);

#endif
