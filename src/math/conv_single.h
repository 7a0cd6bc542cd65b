/* Direct convolution of single-channel images (a first layer over grayscale input,
 * LeNet's conv1): stride 1, no padding or dilation. oneDNN pads one channel to its
 * 16-channel blocks and reorders the top to and from that layout on every pass;
 * this reads and writes Caffe's plain layout directly, with the weights broadcast
 * against 8 output columns at a time. */
#ifndef CG_MATH_CONV_SINGLE_H
#define CG_MATH_CONV_SINGLE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cg_conv_single_shape {
  int num, height, width;           /* bottom: [num, 1, height, width] */
  int num_output, kernel_h, kernel_w; /* top: [num, num_output, height - kernel_h + 1, width - kernel_w + 1] */
} cg_conv_single_shape;

/* Whether these kernels were built (AVX2 and FMA); without them callers use others. */
bool cg_conv_single_available(void);

/* top = conv(bottom, weight) + bias (bias may be NULL); weight is [num_output, 1, kh, kw]. */
void cg_conv_single_forward(const cg_conv_single_shape *s, const float *bottom, const float *weight,
                            const float *bias, float *top);

/* Floats of scratch cg_conv_single_param_grad needs for a shape. */
size_t cg_conv_single_grad_scratch(const cg_conv_single_shape *s);

/* weight_diff += dL/dW and bias_diff += dL/db (when not NULL), summed in an order that
 * does not depend on the thread count. scratch: cg_conv_single_grad_scratch floats. */
void cg_conv_single_param_grad(const cg_conv_single_shape *s, const float *bottom, const float *top_diff,
                               float *scratch, float *weight_diff, float *bias_diff);

#endif
