/* ONNX forms of the element-wise layers: the neurons (ReLU ... Swish), Eltwise,
 * Softmax and ArgMax. Terms that are identities (scale 1, shift 0, power 1) are
 * left out, so the graph computes what Caffe computes in the same order. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "caffegrid/error.h"
#include "export/onnx_export.h"

/* One operator on one input; the node. */
static Onnx__NodeProto *unary(cg_onnx_export *x, const cg_net_layer *nl, const char *op) {
  const char *input = cg_onnx_in(x, nl, 0);
  return cg_onnx_op(x, nl, op, &input, 1, cg_onnx_out(x, nl, 0));
}

/* value op constant, into `output` (a fresh name when NULL); returns the output. */
static const char *with_constant(cg_onnx_export *x, const cg_net_layer *nl, const char *op, const char *value,
                                 float constant, const char *output) {
  const char *inputs[2] = {value, cg_onnx_scalar(&x->g, op, constant)};
  if (!output) output = cg_onnx_temp(&x->g, op);
  cg_onnx_op(x, nl, op, inputs, 2, output);
  return output;
}

int cg_onnx_emit_relu(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__ReLUParameter *p = nl->layer.param->relu_param;
  float slope = p ? p->negative_slope : 0.0f;
  Onnx__NodeProto *node = unary(x, nl, slope != 0 ? "LeakyRelu" : "Relu");
  if (slope != 0) cg_onnx_attr_float(&x->g, node, "alpha", slope);
  return CG_OK;
}

int cg_onnx_emit_prelu(cg_onnx_export *x, const cg_net_layer *nl) {
  const cg_blob *slope = nl->layer.params[0], *bottom = nl->bottoms[0];
  int64_t dims[CG_BLOB_MAX_AXES] = {1};
  int rank = slope->count == 1 ? 1 : cg_onnx_channel_dims((int64_t)slope->count, bottom->num_axes, dims);
  const char *input = cg_onnx_in(x, nl, 0);
  const char *inputs[2] = {input, cg_onnx_param(x, nl, 0, "slope", dims, rank)};
  cg_onnx_op(x, nl, "PRelu", inputs, 2, cg_onnx_out(x, nl, 0));
  return CG_OK;
}

int cg_onnx_emit_elu(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__ELUParameter *p = nl->layer.param->elu_param;
  cg_onnx_attr_float(&x->g, unary(x, nl, "Elu"), "alpha", p ? p->alpha : 1.0f);
  return CG_OK;
}

int cg_onnx_emit_unary(cg_onnx_export *x, const cg_net_layer *nl) {
  static const char *const pairs[][2] = {{"Sigmoid", "Sigmoid"}, {"TanH", "Tanh"}, {"AbsVal", "Abs"}, {"BNLL", "Softplus"}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    if (strcmp(nl->layer.ops->type, pairs[i][0]) == 0) return unary(x, nl, pairs[i][1]), CG_OK;
  return cg_error(CG_ERR_UNSUPPORTED, "no operator");
}

/* shift + scale * x, the identity terms left out; into `output` when it is the last step */
static const char *affine(cg_onnx_export *x, const cg_net_layer *nl, float scale, float shift, const char *output) {
  const char *v = cg_onnx_in(x, nl, 0);
  if (scale == 1 && shift == 0) return v;
  if (scale != 1) v = with_constant(x, nl, "Mul", v, scale, shift == 0 ? output : NULL);
  if (shift != 0) v = with_constant(x, nl, "Add", v, shift, output);
  return v;
}

int cg_onnx_emit_power(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__PowerParameter *p = nl->layer.param->power_param;
  float power = p ? p->power : 1, scale = p ? p->scale : 1, shift = p ? p->shift : 0;
  if (power == 1 && scale == 1 && shift == 0) return unary(x, nl, "Identity"), CG_OK;
  const char *base = affine(x, nl, scale, shift, power == 1 ? cg_onnx_out(x, nl, 0) : NULL);
  if (power != 1) with_constant(x, nl, "Pow", base, power, cg_onnx_out(x, nl, 0));
  return CG_OK;
}

int cg_onnx_emit_exp(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__ExpParameter *p = nl->layer.param->exp_param;
  float base = p ? p->base : -1, scale = p ? p->scale : 1, shift = p ? p->shift : 0;
  if (base != -1 && base <= 0) return cg_error(CG_ERR_UNSUPPORTED, "base %g is not positive", base);
  float ln_base = base == -1 ? 1.0f : logf(base); /* base^y = e^(y ln base) */
  const char *inner = affine(x, nl, scale * ln_base, shift * ln_base, NULL);
  cg_onnx_op(x, nl, "Exp", &inner, 1, cg_onnx_out(x, nl, 0));
  return CG_OK;
}

int cg_onnx_emit_log(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__LogParameter *p = nl->layer.param->log_param;
  float base = p ? p->base : -1, scale = p ? p->scale : 1, shift = p ? p->shift : 0;
  if (base != -1 && (base <= 0 || base == 1)) return cg_error(CG_ERR_UNSUPPORTED, "base %g has no logarithm", base);
  const char *inner = affine(x, nl, scale, shift, NULL);
  if (base == -1) {
    cg_onnx_op(x, nl, "Log", &inner, 1, cg_onnx_out(x, nl, 0));
    return CG_OK;
  }
  const char *natural = cg_onnx_temp(&x->g, "ln");
  cg_onnx_op(x, nl, "Log", &inner, 1, natural);
  with_constant(x, nl, "Mul", natural, 1.0f / logf(base), cg_onnx_out(x, nl, 0));
  return CG_OK;
}

int cg_onnx_emit_threshold(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__ThresholdParameter *p = nl->layer.param->threshold_param;
  const char *above = with_constant(x, nl, "Greater", cg_onnx_in(x, nl, 0), p ? p->threshold : 0.0f, NULL);
  Onnx__NodeProto *cast = cg_onnx_op(x, nl, "Cast", &above, 1, cg_onnx_out(x, nl, 0));
  cg_onnx_attr_int(&x->g, cast, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  return CG_OK;
}

int cg_onnx_emit_swish(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__SwishParameter *p = nl->layer.param->swish_param;
  float beta = p ? p->beta : 1.0f;
  const char *input = cg_onnx_in(x, nl, 0), *scaled = beta == 1 ? input : with_constant(x, nl, "Mul", input, beta, NULL);
  const char *gate = cg_onnx_temp(&x->g, "gate");
  cg_onnx_op(x, nl, "Sigmoid", &scaled, 1, gate);
  const char *inputs[2] = {input, gate};
  cg_onnx_op(x, nl, "Mul", inputs, 2, cg_onnx_out(x, nl, 0));
  return CG_OK;
}

int cg_onnx_emit_eltwise(cg_onnx_export *x, const cg_net_layer *nl) {
  static const Caffe__EltwiseParameter defaults = CAFFE__ELTWISE_PARAMETER__INIT;
  const Caffe__EltwiseParameter *p = nl->layer.param->eltwise_param ? nl->layer.param->eltwise_param : &defaults;
  const char *inputs[64];
  if (nl->num_bottoms > 64) return cg_error(CG_ERR_UNSUPPORTED, "more than 64 bottoms");
  for (int j = 0; j < nl->num_bottoms; j++) inputs[j] = cg_onnx_in(x, nl, j);
  const char *op = "Sum";
  if (p->operation == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD) op = "Mul";
  else if (p->operation == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX) op = "Max";
  else
    for (int j = 0; j < nl->num_bottoms && j < (int)p->n_coeff; j++)
      if (p->coeff[j] != 1) inputs[j] = with_constant(x, nl, "Mul", inputs[j], p->coeff[j], NULL);
  if (strcmp(op, "Mul") != 0 || nl->num_bottoms == 2) {
    cg_onnx_op(x, nl, op, inputs, nl->num_bottoms, cg_onnx_out(x, nl, 0));
    return CG_OK;
  }
  const char *product = inputs[0]; /* Mul takes two inputs: a chain, in Caffe's order */
  for (int j = 1; j < nl->num_bottoms; j++) {
    const char *pair[2] = {product, inputs[j]};
    product = j == nl->num_bottoms - 1 ? cg_onnx_out(x, nl, 0) : cg_onnx_temp(&x->g, "product");
    cg_onnx_op(x, nl, "Mul", pair, 2, product);
  }
  return CG_OK;
}

int cg_onnx_emit_softmax(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__SoftmaxParameter *p = nl->layer.param->softmax_param;
  /* from opset 13 ONNX's Softmax normalises along the one axis, as Caffe's does */
  cg_onnx_attr_int(&x->g, unary(x, nl, "Softmax"), "axis", cg_blob_canonical_axis(nl->bottoms[0], p ? p->axis : 1));
  return CG_OK;
}

/* ArgMax: with an axis, the top_k indices (or values, out_max_val) along it; without,
 * each example's top_k over all its values as (N, 1, k), or (N, 2, k) with the values. */
int cg_onnx_emit_argmax(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__ArgMaxParameter *p = nl->layer.param->argmax_param;
  int64_t k = p ? p->top_k : 1;
  bool values = p && p->out_max_val, has_axis = p && p->has_axis;
  const char *input = cg_onnx_in(x, nl, 0);
  int64_t axis = has_axis ? cg_blob_canonical_axis(nl->bottoms[0], p->axis) : 1;
  if (!has_axis) {
    const char *flat = cg_onnx_temp(&x->g, "flat");
    cg_onnx_attr_int(&x->g, cg_onnx_op(x, nl, "Flatten", &input, 1, flat), "axis", 1);
    input = flat;
  }
  /* Among equal values Caffe ranks the higher index first, ONNX's TopK the lower: TopK
   * runs on the input reversed along the axis, and its indices i become dim - 1 - i. */
  int64_t dim = has_axis ? nl->bottoms[0]->shape[axis] : (int64_t)cg_blob_count_from(nl->bottoms[0], 1);
  int64_t last = -1, before_first = INT64_MIN, backwards = -1;
  const char *reversed = cg_onnx_temp(&x->g, "reversed");
  const char *slice_in[5] = {input, cg_onnx_int64_list(&x->g, "starts", &last, 1),
                             cg_onnx_int64_list(&x->g, "ends", &before_first, 1),
                             cg_onnx_int64_list(&x->g, "axes", &axis, 1),
                             cg_onnx_int64_list(&x->g, "steps", &backwards, 1)};
  cg_onnx_op(x, nl, "Slice", slice_in, 5, reversed);
  const char *val = cg_onnx_temp(&x->g, "values"), *rev_idx = cg_onnx_temp(&x->g, "reversed_indices");
  const char *topk_in[2] = {reversed, cg_onnx_int64_list(&x->g, "k", &k, 1)}, *topk_out[2] = {val, rev_idx};
  char base[512];
  snprintf(base, sizeof base, "%s/TopK", nl->layer.name);
  Onnx__NodeProto *topk = cg_onnx_node(&x->g, "TopK", cg_onnx_temp(&x->g, base), topk_in, 2, topk_out, 2);
  cg_onnx_attr_int(&x->g, topk, "axis", axis);
  int64_t dim_last = dim - 1;
  const char *idx = cg_onnx_temp(&x->g, "indices");
  const char *sub_in[2] = {cg_onnx_int64_list(&x->g, "last_index", &dim_last, 1), rev_idx};
  cg_onnx_op(x, nl, "Sub", sub_in, 2, idx);
  const char *indices = values && has_axis ? NULL : (has_axis ? cg_onnx_out(x, nl, 0) : cg_onnx_temp(&x->g, "index"));
  if (indices) cg_onnx_attr_int(&x->g, cg_onnx_op(x, nl, "Cast", &idx, 1, indices), "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  if (has_axis) {
    if (values) cg_onnx_op(x, nl, "Identity", &val, 1, cg_onnx_out(x, nl, 0));
    return CG_OK;
  }
  /* (N, k) -> (N, 1, k); with the values, (N, 2, k): indices then values, as Caffe stacks them */
  int64_t one = 1;
  const char *ax = cg_onnx_int64_list(&x->g, "axes", &one, 1);
  const char *ui[2] = {indices, ax}, *uv[2] = {val, ax};
  if (!values) return cg_onnx_op(x, nl, "Unsqueeze", ui, 2, cg_onnx_out(x, nl, 0)), CG_OK;
  const char *i3 = cg_onnx_temp(&x->g, "indices3"), *v3 = cg_onnx_temp(&x->g, "values3");
  cg_onnx_op(x, nl, "Unsqueeze", ui, 2, i3);
  cg_onnx_op(x, nl, "Unsqueeze", uv, 2, v3);
  const char *both[2] = {i3, v3};
  cg_onnx_attr_int(&x->g, cg_onnx_op(x, nl, "Concat", both, 2, cg_onnx_out(x, nl, 0)), "axis", 1);
  return CG_OK;
}
