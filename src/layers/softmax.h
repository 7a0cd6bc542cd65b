/* The softmax kernels, shared by Softmax and SoftmaxWithLoss. Defined in
 * softmax.c; internal to src/layers. Arrays are [outer, channels, inner] and the
 * softmax runs over the middle axis. */
#ifndef CG_LAYERS_SOFTMAX_H
#define CG_LAYERS_SOFTMAX_H

/* y = exp(x - max) / sum(exp(x - max)); y may be x. scratch: `inner` floats. */
void cg_softmax_forward_cpu(int outer, int channels, int inner, const float *x, float *y, float *scratch);
/* dx = (dy - sum_c(dy * y)) * y; dx may be dy. scratch: `inner` floats. */
void cg_softmax_backward_cpu(int outer, int channels, int inner, const float *y, const float *dy, float *dx,
                             float *scratch);

#endif
