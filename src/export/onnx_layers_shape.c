/* ONNX forms of the layers that move values without computing: Concat, Slice,
 * Crop, Flatten and Reshape. The shapes come from the built net; the batch axis
 * stays symbolic unless a layer changes or cuts it. */
#include <string.h>

#include "caffegrid/error.h"
#include "export/onnx_export.h"

static int batch_axis_check(cg_onnx_export *x, int axis, const char *what) {
  if (axis == 0 && x->symbolic_batch)
    return cg_error(CG_ERR_UNSUPPORTED, "it %s along the batch axis, which a symbolic batch cannot follow: export "
                    "with a fixed input shape", what);
  return CG_OK;
}

int cg_onnx_emit_concat(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__ConcatParameter *p = nl->layer.param->concat_param;
  int axis = p && p->has_concat_dim ? (int)p->concat_dim : p ? p->axis : 1;
  axis = cg_blob_canonical_axis(nl->bottoms[0], axis);
  const char *inputs[64];
  if (nl->num_bottoms > 64) return cg_error(CG_ERR_UNSUPPORTED, "more than 64 bottoms");
  for (int j = 0; j < nl->num_bottoms; j++) inputs[j] = cg_onnx_in(x, nl, j);
  cg_onnx_attr_int(&x->g, cg_onnx_op(x, nl, "Concat", inputs, nl->num_bottoms, cg_onnx_out(x, nl, 0)), "axis", axis);
  return CG_OK;
}

int cg_onnx_emit_slice(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__SliceParameter *p = nl->layer.param->slice_param;
  int axis = p && p->has_slice_dim ? (int)p->slice_dim : p ? p->axis : 1;
  axis = cg_blob_canonical_axis(nl->bottoms[0], axis);
  int rc = batch_axis_check(x, axis, "slices");
  if (rc) return rc;
  int64_t sizes[64];
  const char *outputs[64];
  if (nl->num_tops > 64) return cg_error(CG_ERR_UNSUPPORTED, "more than 64 tops");
  const char *inputs[2] = {cg_onnx_in(x, nl, 0), NULL};
  for (int j = 0; j < nl->num_tops; j++) sizes[j] = nl->tops[j]->shape[axis];
  for (int j = 0; j < nl->num_tops; j++) outputs[j] = cg_onnx_out(x, nl, j);
  inputs[1] = cg_onnx_int64_list(&x->g, "split", sizes, nl->num_tops);
  char base[512];
  snprintf(base, sizeof base, "%s/Split", nl->layer.name);
  cg_onnx_attr_int(&x->g, cg_onnx_node(&x->g, "Split", cg_onnx_temp(&x->g, base), inputs, 2, outputs, nl->num_tops),
                   "axis", axis);
  return CG_OK;
}

/* Crop: bottom[0] cut to bottom[1]'s shape from `axis` on, at Caffe's offsets. */
int cg_onnx_emit_crop(cg_onnx_export *x, const cg_net_layer *nl) {
  const Caffe__CropParameter *p = nl->layer.param->crop_param;
  const cg_blob *bottom = nl->bottoms[0], *top = nl->tops[0];
  int axis = cg_blob_canonical_axis(bottom, p ? p->axis : 2);
  int64_t starts[CG_BLOB_MAX_AXES], ends[CG_BLOB_MAX_AXES], axes[CG_BLOB_MAX_AXES];
  int n = 0;
  for (int d = axis; d < bottom->num_axes; d++) {
    int64_t offset = !p || p->n_offset == 0 ? 0 : p->n_offset == 1 ? p->offset[0] : p->offset[d - axis];
    if (d == 0 && (offset != 0 || top->shape[0] != bottom->shape[0])) {
      int rc = batch_axis_check(x, 0, "crops");
      if (rc) return rc;
    }
    if (offset == 0 && top->shape[d] == bottom->shape[d]) continue;
    starts[n] = offset, ends[n] = offset + top->shape[d], axes[n] = d, n++;
  }
  const char *input = cg_onnx_in(x, nl, 0);
  (void)cg_onnx_in(x, nl, 1); /* only its shape matters, and that is in the constants */
  if (n == 0) return cg_onnx_op(x, nl, "Identity", &input, 1, cg_onnx_out(x, nl, 0)), CG_OK;
  const char *inputs[4] = {input, cg_onnx_int64_list(&x->g, "starts", starts, n),
                           cg_onnx_int64_list(&x->g, "ends", ends, n), cg_onnx_int64_list(&x->g, "axes", axes, n)};
  cg_onnx_op(x, nl, "Slice", inputs, 4, cg_onnx_out(x, nl, 0));
  return CG_OK;
}

int cg_onnx_emit_reshape(cg_onnx_export *x, const cg_net_layer *nl) {
  const char *input = cg_onnx_in(x, nl, 0);
  return cg_onnx_reshape_to(x, nl, input, nl->bottoms[0], nl->tops[0], cg_onnx_out(x, nl, 0));
}
