/* ONNX forms of the layers with weights or windows: Convolution, Deconvolution,
 * InnerProduct, Pooling, LRN, BatchNorm, Scale, Bias. Each reproduces Caffe's
 * arithmetic, including its pooling sizes and AVE divisors, or refuses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "export/onnx_export.h"
#include "layers/conv_common.h"

/* ---- Convolution, Deconvolution ---- */

static int conv_like(cg_onnx_export *x, const cg_net_layer *nl, const char *op) {
  const cg_conv_state *s = nl->layer.priv;
  if (s->axis != 1 || s->num_spatial != 2 || nl->bottoms[0]->num_axes != 4)
    return cg_error(CG_ERR_UNSUPPORTED, "only 2-D convolutions over (N, C, H, W) blobs are exported");
  const char *w = cg_onnx_param(x, nl, 0, "W", NULL, 0), *b = s->bias_term ? cg_onnx_param(x, nl, 1, "b", NULL, 0) : NULL;
  const char *in[CG_BLOB_MAX_AXES * 4];
  int n = nl->num_bottoms < (int)(sizeof in / sizeof in[0]) ? nl->num_bottoms : (int)(sizeof in / sizeof in[0]);
  for (int j = 0; j < n; j++) in[j] = cg_onnx_in(x, nl, j); /* bottoms share the weights, one top each */
  for (int j = 0; j < n; j++) {
    const char *inputs[3] = {in[j], w, b};
    Onnx__NodeProto *node = cg_onnx_op(x, nl, op, inputs, b ? 3 : 2, cg_onnx_out(x, nl, j));
    int64_t kernel[2] = {s->kernel_h, s->kernel_w}, strides[2] = {s->stride_h, s->stride_w};
    int64_t pads[4] = {s->pad_h, s->pad_w, s->pad_h, s->pad_w}, dilations[2] = {s->dilation_h, s->dilation_w};
    cg_onnx_attr_ints(&x->g, node, "kernel_shape", kernel, 2);
    cg_onnx_attr_ints(&x->g, node, "strides", strides, 2);
    cg_onnx_attr_ints(&x->g, node, "pads", pads, 4);
    cg_onnx_attr_ints(&x->g, node, "dilations", dilations, 2);
    cg_onnx_attr_int(&x->g, node, "group", s->group);
  }
  return CG_OK;
}

int cg_onnx_emit_convolution(cg_onnx_export *x, const cg_net_layer *nl) { return conv_like(x, nl, "Conv"); }
/* ConvTranspose's output size, stride * (in - 1) + dilated kernel - pads, is Caffe's
 * Deconvolution's, and its weight layout (C_in, C_out / group, kh, kw) is Caffe's too */
int cg_onnx_emit_deconvolution(cg_onnx_export *x, const cg_net_layer *nl) { return conv_like(x, nl, "ConvTranspose"); }

/* ---- InnerProduct ---- */

int cg_onnx_emit_inner_product(cg_onnx_export *x, const cg_net_layer *nl) {
  static const Caffe__InnerProductParameter defaults = CAFFE__INNER_PRODUCT_PARAMETER__INIT;
  const Caffe__InnerProductParameter *p = nl->layer.param->inner_product_param ? nl->layer.param->inner_product_param
                                                                                : &defaults;
  const cg_blob *bottom = nl->bottoms[0], *top = nl->tops[0];
  int axis = cg_blob_canonical_axis(bottom, p->axis);
  const char *input = cg_onnx_in(x, nl, 0);
  const char *w = cg_onnx_param(x, nl, 0, "W", NULL, 0);
  const char *b = nl->layer.num_params > 1 ? cg_onnx_param(x, nl, 1, "b", NULL, 0) : NULL;
  const char *rows = input; /* the input as [examples, K] */
  if (axis == 1 && bottom->num_axes > 2) {
    rows = cg_onnx_temp(&x->g, "flat");
    Onnx__NodeProto *f = cg_onnx_op(x, nl, "Flatten", &input, 1, rows);
    cg_onnx_attr_int(&x->g, f, "axis", 1);
  } else if (axis != 1) {
    if (axis == 0 && x->symbolic_batch)
      return cg_error(CG_ERR_UNSUPPORTED, "axis 0 folds the batch into each example: export with a fixed input shape");
    int64_t shape[2] = {-1, (int64_t)cg_blob_count_from(bottom, axis)};
    const char *inputs[2] = {input, cg_onnx_int64_list(&x->g, "shape", shape, 2)};
    rows = cg_onnx_temp(&x->g, "rows");
    cg_onnx_op(x, nl, "Reshape", inputs, 2, rows);
  }
  const char *product = axis == 1 ? cg_onnx_out(x, nl, 0) : cg_onnx_temp(&x->g, "product");
  const char *inputs[3] = {rows, w, b};
  Onnx__NodeProto *gemm = cg_onnx_op(x, nl, "Gemm", inputs, b ? 3 : 2, product);
  cg_onnx_attr_int(&x->g, gemm, "transB", p->transpose ? 0 : 1);
  if (axis == 1) return CG_OK;
  /* [examples, M] back to the leading axes: all but the first are static */
  int64_t target[CG_BLOB_MAX_AXES];
  for (int i = 0; i < top->num_axes; i++) target[i] = i == 0 && x->symbolic_batch ? -1 : top->shape[i];
  const char *back[2] = {product, cg_onnx_int64_list(&x->g, "shape", target, top->num_axes)};
  cg_onnx_op(x, nl, "Reshape", back, 2, cg_onnx_out(x, nl, 0));
  return CG_OK;
}

/* ---- Pooling ---- */

typedef struct pool_geometry {
  int kernel[2], pad[2], stride[2], in[2], out[2];
  int end_pad[2]; /* the padding after the last row/column that gives Caffe's output size */
} pool_geometry;

static int pool_geometry_of(const cg_net_layer *nl, const Caffe__PoolingParameter *p, pool_geometry *g) {
  const cg_blob *bottom = nl->bottoms[0], *top = nl->tops[0];
  g->in[0] = bottom->shape[2], g->in[1] = bottom->shape[3], g->out[0] = top->shape[2], g->out[1] = top->shape[3];
  g->kernel[0] = (int)(p->has_kernel_h ? p->kernel_h : p->kernel_size);
  g->kernel[1] = (int)(p->has_kernel_w ? p->kernel_w : p->kernel_size);
  g->pad[0] = (int)(p->has_pad_h ? p->pad_h : p->pad), g->pad[1] = (int)(p->has_pad_w ? p->pad_w : p->pad);
  g->stride[0] = (int)(p->has_stride_h ? p->stride_h : p->stride);
  g->stride[1] = (int)(p->has_stride_w ? p->stride_w : p->stride);
  for (int a = 0; a < 2; a++) {
    /* floor((in + pad + end - kernel) / stride) + 1 = out, with the smallest end >= 0 */
    int end = (g->out[a] - 1) * g->stride[a] + g->kernel[a] - g->in[a] - g->pad[a];
    if (end < 0) end = 0;
    if ((g->in[a] + g->pad[a] + end - g->kernel[a]) / g->stride[a] + 1 != g->out[a])
      return cg_error(CG_ERR_UNSUPPORTED, "its output size %d is not reachable with ONNX padding", g->out[a]);
    g->end_pad[a] = end;
  }
  return CG_OK;
}

/* Caffe's AVE divisor for output (oh, ow): the window clipped to the padded extent. */
static int caffe_divisor(const pool_geometry *g, int oh, int ow) {
  int size = 1, pos[2] = {oh, ow};
  for (int a = 0; a < 2; a++) {
    int start = pos[a] * g->stride[a] - g->pad[a], end = start + g->kernel[a];
    if (end > g->in[a] + g->pad[a]) end = g->in[a] + g->pad[a];
    size *= end - start;
  }
  return size;
}

int cg_onnx_emit_pooling(cg_onnx_export *x, const cg_net_layer *nl) {
  static const Caffe__PoolingParameter defaults = CAFFE__POOLING_PARAMETER__INIT;
  const Caffe__PoolingParameter *p = nl->layer.param->pooling_param ? nl->layer.param->pooling_param : &defaults;
  bool max = p->pool == CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX;
  if (!max && p->pool != CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE)
    return cg_error(CG_ERR_UNSUPPORTED, "STOCHASTIC pooling has no ONNX operator");
  if (nl->num_tops > 1) return cg_error(CG_ERR_UNSUPPORTED, "its second top (the MAX positions) has no ONNX form");
  const char *input = cg_onnx_in(x, nl, 0);
  if (p->global_pooling) {
    cg_onnx_op(x, nl, max ? "GlobalMaxPool" : "GlobalAveragePool", &input, 1, cg_onnx_out(x, nl, 0));
    return CG_OK;
  }
  pool_geometry g;
  int rc = pool_geometry_of(nl, p, &g);
  if (rc) return rc;
  /* pads stay below the kernel (Caffe's rule for the front; at the end a larger one would
   * mean an empty window, which Caffe's sizes only give without padding) */
  if (g.end_pad[0] >= g.kernel[0] || g.end_pad[1] >= g.kernel[1])
    return cg_error(CG_ERR_UNSUPPORTED, "its last window lies wholly past the input (ceil rounding without padding)");
  int64_t pads[4] = {g.pad[0], g.pad[1], g.end_pad[0], g.end_pad[1]};
  /* ONNX's AVE divides by the whole window (count_include_pad); where Caffe clips the
   * window at the end of its padding, a constant map corrects the divisor */
  float *correction = max ? NULL : malloc(sizeof(float) * (size_t)g.out[0] * (size_t)g.out[1]);
  bool corrected = false;
  for (int oh = 0; correction && oh < g.out[0]; oh++)
    for (int ow = 0; ow < g.out[1]; ow++) {
      float f = (float)(g.kernel[0] * g.kernel[1]) / (float)caffe_divisor(&g, oh, ow);
      correction[(size_t)oh * (size_t)g.out[1] + (size_t)ow] = f;
      corrected |= f != 1.0f;
    }
  if (!max && !correction) return cg_error(CG_ERR_NOMEM, "out of memory");
  const char *pooled = corrected ? cg_onnx_temp(&x->g, "pooled") : cg_onnx_out(x, nl, 0);
  Onnx__NodeProto *node = cg_onnx_op(x, nl, max ? "MaxPool" : "AveragePool", &input, 1, pooled);
  int64_t kernel[2] = {g.kernel[0], g.kernel[1]}, strides[2] = {g.stride[0], g.stride[1]};
  cg_onnx_attr_ints(&x->g, node, "kernel_shape", kernel, 2);
  cg_onnx_attr_ints(&x->g, node, "strides", strides, 2);
  cg_onnx_attr_ints(&x->g, node, "pads", pads, 4);
  if (!max) cg_onnx_attr_int(&x->g, node, "count_include_pad", 1);
  if (corrected) {
    int64_t dims[2] = {g.out[0], g.out[1]};
    const char *inputs[2] = {pooled, cg_onnx_constant(x, nl, "divisor_correction", dims, 2, correction)};
    cg_onnx_op(x, nl, "Mul", inputs, 2, cg_onnx_out(x, nl, 0));
  }
  free(correction);
  return CG_OK;
}

/* ---- LRN ---- */

int cg_onnx_emit_lrn(cg_onnx_export *x, const cg_net_layer *nl) {
  static const Caffe__LRNParameter defaults = CAFFE__LRNPARAMETER__INIT;
  const Caffe__LRNParameter *p = nl->layer.param->lrn_param ? nl->layer.param->lrn_param : &defaults;
  const char *input = cg_onnx_in(x, nl, 0);
  int size = (int)p->local_size;
  if (p->norm_region == CAFFE__LRNPARAMETER__NORM_REGION__ACROSS_CHANNELS) {
    /* ONNX's LRN is Caffe's: x / (k + alpha / size * sum of squares)^beta */
    Onnx__NodeProto *node = cg_onnx_op(x, nl, "LRN", &input, 1, cg_onnx_out(x, nl, 0));
    cg_onnx_attr_int(&x->g, node, "size", size);
    cg_onnx_attr_float(&x->g, node, "alpha", p->alpha);
    cg_onnx_attr_float(&x->g, node, "beta", p->beta);
    cg_onnx_attr_float(&x->g, node, "bias", p->k);
    return CG_OK;
  }
  /* WITHIN_CHANNEL, as Caffe builds it: x * (1 + alpha * mean of x^2 over size x size)^-beta,
   * the mean an AVE pooling padded by (size-1)/2 whose windows never leave the padding */
  const char *square = cg_onnx_temp(&x->g, "square"), *mean = cg_onnx_temp(&x->g, "mean");
  const char *scaled = cg_onnx_temp(&x->g, "scaled"), *base = cg_onnx_temp(&x->g, "base");
  const char *factor = cg_onnx_temp(&x->g, "factor");
  const char *sq_in[2] = {input, input};
  cg_onnx_op(x, nl, "Mul", sq_in, 2, square);
  Onnx__NodeProto *pool = cg_onnx_op(x, nl, "AveragePool", &square, 1, mean);
  int64_t kernel[2] = {size, size}, pads[4] = {(size - 1) / 2, (size - 1) / 2, (size - 1) / 2, (size - 1) / 2};
  cg_onnx_attr_ints(&x->g, pool, "kernel_shape", kernel, 2);
  cg_onnx_attr_ints(&x->g, pool, "pads", pads, 4);
  cg_onnx_attr_int(&x->g, pool, "count_include_pad", 1);
  const char *a[2] = {mean, cg_onnx_scalar(&x->g, "alpha", p->alpha)};
  cg_onnx_op(x, nl, "Mul", a, 2, scaled);
  const char *s[2] = {scaled, cg_onnx_scalar(&x->g, "one", 1.0f)};
  cg_onnx_op(x, nl, "Add", s, 2, base);
  const char *pw[2] = {base, cg_onnx_scalar(&x->g, "minus_beta", -p->beta)};
  cg_onnx_op(x, nl, "Pow", pw, 2, factor);
  const char *out_in[2] = {input, factor};
  cg_onnx_op(x, nl, "Mul", out_in, 2, cg_onnx_out(x, nl, 0));
  return CG_OK;
}

/* ---- BatchNorm ---- */

int cg_onnx_emit_batch_norm(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__BatchNormParameter *p = nl->layer.param->batch_norm_param;
  if (p && p->has_use_global_stats && !p->use_global_stats)
    return cg_error(CG_ERR_UNSUPPORTED, "use_global_stats: false normalises with each batch's own statistics");
  float eps = p && p->has_eps ? p->eps : 1e-5f;
  const cg_blob *bottom = nl->bottoms[0];
  const cg_blob *mean = nl->layer.params[0], *var = nl->layer.params[1], *factor = nl->layer.params[2];
  int channels = bottom->num_axes > 1 ? bottom->shape[1] : 1;
  if ((int)mean->count != channels) return cg_error(CG_ERR_UNSUPPORTED, "its statistics do not match the channels");
  float scale = factor->data[0] == 0 ? 0.0f : 1.0f / factor->data[0];
  float *m = malloc(sizeof(float) * (size_t)channels), *sd = malloc(sizeof(float) * (size_t)channels);
  if (!m || !sd) {
    free(m), free(sd);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  for (int c = 0; c < channels; c++) m[c] = mean->data[c] * scale, sd[c] = sqrtf(var->data[c] * scale + eps);
  int64_t dims[CG_BLOB_MAX_AXES];
  int rank = cg_onnx_channel_dims(channels, bottom->num_axes, dims);
  const char *input = cg_onnx_in(x, nl, 0), *centred = cg_onnx_temp(&x->g, "centred");
  const char *sub[2] = {input, cg_onnx_constant(x, nl, "mean", dims, rank, m)};
  cg_onnx_op(x, nl, "Sub", sub, 2, centred);
  const char *div[2] = {centred, cg_onnx_constant(x, nl, "std", dims, rank, sd)};
  cg_onnx_op(x, nl, "Div", div, 2, cg_onnx_out(x, nl, 0));
  free(m), free(sd);
  return CG_OK;
}

/* ---- Scale, Bias: a factor over axes [axis, axis + its rank) of the input ---- */

/* The factor as a value broadcasting against the input: a parameter reshaped to
 * [its dims..., 1, ...], or the second bottom reshaped alike. */
static int factor_value(cg_onnx_export *x, const cg_net_layer *nl, int axis, int param, const char *suffix,
                        const char **out) {
  const cg_blob *bottom = nl->bottoms[0];
  const cg_blob *f = nl->num_bottoms > 1 ? nl->bottoms[1] : nl->layer.params[param];
  int64_t dims[CG_BLOB_MAX_AXES];
  int rank = 0;
  for (int i = 0; i < f->num_axes; i++) dims[rank++] = f->shape[i];
  while (rank < bottom->num_axes - axis) dims[rank++] = 1;
  if (axis == 0 && f->num_axes > 0) {
    if (nl->num_bottoms == 1 && x->symbolic_batch)
      return cg_error(CG_ERR_UNSUPPORTED, "its parameter spans the batch axis: export with a fixed input shape");
    if (x->symbolic_batch) dims[0] = 0; /* Reshape's 0: the second bottom's own batch */
  }
  if (nl->num_bottoms == 1) {
    *out = cg_onnx_param(x, nl, param, suffix, dims, rank);
    return CG_OK;
  }
  const char *inputs[2] = {cg_onnx_in(x, nl, 1), cg_onnx_int64_list(&x->g, "shape", dims, rank)};
  *out = cg_onnx_temp(&x->g, suffix);
  cg_onnx_op(x, nl, "Reshape", inputs, 2, *out);
  return CG_OK;
}

int cg_onnx_emit_scale(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__ScaleParameter *p = nl->layer.param->scale_param;
  int axis = cg_blob_canonical_axis(nl->bottoms[0], p && p->has_axis ? p->axis : 1);
  const char *input = cg_onnx_in(x, nl, 0), *gamma, *beta = NULL;
  int rc = factor_value(x, nl, axis, 0, "gamma", &gamma);
  bool bias = p && p->bias_term;
  if (!rc && bias) { /* its bias is the layer's last parameter, shaped like the factor */
    const cg_blob *b = nl->layer.params[nl->layer.num_params - 1];
    int64_t dims[CG_BLOB_MAX_AXES];
    int rank = 0;
    for (int i = 0; i < b->num_axes; i++) dims[rank++] = b->shape[i];
    while (rank < nl->bottoms[0]->num_axes - axis) dims[rank++] = 1;
    beta = cg_onnx_param(x, nl, nl->layer.num_params - 1, "beta", dims, rank);
  }
  if (rc) return rc;
  const char *product = bias ? cg_onnx_temp(&x->g, "scaled") : cg_onnx_out(x, nl, 0);
  const char *mul[2] = {input, gamma};
  cg_onnx_op(x, nl, "Mul", mul, 2, product);
  if (bias) {
    const char *add[2] = {product, beta};
    cg_onnx_op(x, nl, "Add", add, 2, cg_onnx_out(x, nl, 0));
  }
  return CG_OK;
}

int cg_onnx_emit_bias(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__BiasParameter *p = nl->layer.param->bias_param;
  int axis = cg_blob_canonical_axis(nl->bottoms[0], p && p->has_axis ? p->axis : 1);
  const char *input = cg_onnx_in(x, nl, 0), *beta;
  int rc = factor_value(x, nl, axis, 0, "beta", &beta);
  if (rc) return rc;
  const char *add[2] = {input, beta};
  cg_onnx_op(x, nl, "Add", add, 2, cg_onnx_out(x, nl, 0));
  return CG_OK;
}
