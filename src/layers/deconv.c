/* Deconvolution (Caffe's DeconvolutionLayer): the transpose of Convolution, so
 * forward is convolution's data gradient and backward runs convolution forward.
 * Weight [channels, num_output / group, kh, kw]; parsing and kernels in conv.c. */
#include "layers/conv_common.h"

static int deconv_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  return cg_conv_setup(l, bottom, top, true);
}

/* Here the bottom is the column side and the top the image side. */
static int deconv_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  cg_conv_state *s = l->priv;
  const float *weight = l->params[0]->data, *bias = s->bias_term ? l->params[1]->data : NULL;
  size_t bottom_dim = (size_t)s->col_channels * s->col_h * s->col_w;
  size_t top_dim = (size_t)s->im_channels * s->im_h * s->im_w;
  int spatial = s->im_h * s->im_w;
  for (int i = 0; i < l->num_bottoms; i++)
    for (int n = 0; n < s->num; n++) {
      float *out = top[i]->data + n * top_dim;
      cg_conv_col_side_to_im(s, bottom[i]->data + n * bottom_dim, weight, out);
      if (bias) cg_conv_add_bias(s->num_output, spatial, bias, out);
    }
  return CG_OK;
}

static void deconv_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  cg_conv_state *s = l->priv;
  const float *weight = l->params[0]->data;
  float *weight_diff = l->params[0]->diff, *bias_diff = s->bias_term ? l->params[1]->diff : NULL;
  size_t bottom_dim = (size_t)s->col_channels * s->col_h * s->col_w;
  size_t top_dim = (size_t)s->im_channels * s->im_h * s->im_w;
  int spatial = s->im_h * s->im_w;
  for (int i = 0; i < l->num_tops; i++)
    for (int n = 0; n < s->num; n++) {
      const float *top_diff = top[i]->diff + n * top_dim;
      if (bias_diff) cg_conv_bias_grad(s->num_output, spatial, top_diff, bias_diff);
      cg_conv_weight_grad(s, top_diff, bottom[i]->data + n * bottom_dim, weight_diff);
      if (propagate_down[i]) cg_conv_im_to_col_side(s, top_diff, weight, bottom[i]->diff + n * bottom_dim);
    }
}

const cg_layer_ops cg_layer_deconvolution = {
    .type = "Deconvolution",
    .min_bottoms = 1,
    .max_bottoms = -1,
    .min_tops = 1,
    .max_tops = -1,
    .setup = deconv_setup,
    .reshape = cg_conv_reshape,
    .forward = deconv_forward,
    .backward = deconv_backward,
    .destroy = cg_conv_destroy,
};
