/* Concat (Caffe's ConcatLayer): joins its bottoms along one axis (`axis`, or the
 * legacy `concat_dim`). Caffe shares memory for a single bottom; here data is
 * always copied forward and diffs copied back. */
#include <string.h>

#include "core/layer.h"

typedef struct concat_shape {
  int axis;
  size_t num_concats; /* count(0, axis) */
  size_t inner;       /* count(axis + 1) */
} concat_shape;

static int concat_axis(const cg_layer *l, const cg_blob *b, int *axis) {
  const Caffe__ConcatParameter *cp = l->param->concat_param;
  if (cp && cp->has_concat_dim) {
    CG_LAYER_CHECK((int)cp->concat_dim >= 0 && (int)cp->concat_dim < b->num_axes, CG_ERR_INVALID,
                   "concat_dim %u is out of range for a %d-axis bottom", cp->concat_dim, b->num_axes);
    *axis = (int)cp->concat_dim;
    return CG_OK;
  }
  int want = cp ? cp->axis : 1;
  *axis = cg_blob_canonical_axis(b, want);
  CG_LAYER_CHECK(*axis >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", want, b->num_axes);
  return CG_OK;
}

static int concat_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  const Caffe__ConcatParameter *cp = l->param->concat_param;
  CG_LAYER_CHECK(!(cp && cp->has_axis && cp->has_concat_dim), CG_ERR_INVALID,
                 "give either concat_param.axis or concat_param.concat_dim, not both");
  int axis;
  return concat_axis(l, bottom[0], &axis);
}

static int concat_geometry(const cg_layer *l, cg_blob *const *bottom, concat_shape *g) {
  int rc = concat_axis(l, bottom[0], &g->axis);
  if (rc) return rc;
  g->num_concats = cg_blob_count_range(bottom[0], 0, g->axis);
  g->inner = cg_blob_count_from(bottom[0], g->axis + 1);
  return CG_OK;
}

static int concat_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  concat_shape g = {0};
  int rc = concat_geometry(l, bottom, &g);
  if (rc) return rc;
  const cg_blob *b0 = bottom[0];
  int shape[CG_BLOB_MAX_AXES];
  memcpy(shape, b0->shape, sizeof(int) * (size_t)b0->num_axes);
  for (int i = 1; i < l->num_bottoms; i++) {
    CG_LAYER_CHECK(bottom[i]->num_axes == b0->num_axes, CG_ERR_SHAPE,
                   "bottom %d has %d axes, bottom 0 has %d; all must have the same number", i, bottom[i]->num_axes,
                   b0->num_axes);
    for (int j = 0; j < b0->num_axes; j++)
      CG_LAYER_CHECK(j == g.axis || bottom[i]->shape[j] == b0->shape[j], CG_ERR_SHAPE,
                     "bottom %d is %d on axis %d where bottom 0 is %d; only the concat axis (%d) may differ", i,
                     bottom[i]->shape[j], j, b0->shape[j], g.axis);
    shape[g.axis] += bottom[i]->shape[g.axis];
  }
  return cg_blob_reshape(top[0], b0->num_axes, shape);
}

static int concat_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  concat_shape g = {0};
  int rc = concat_geometry(l, bottom, &g);
  if (rc) return rc;
  size_t top_axis = (size_t)top[0]->shape[g.axis], offset = 0;
  for (int i = 0; i < l->num_bottoms; i++) {
    size_t len = (size_t)bottom[i]->shape[g.axis];
    if (bottom[i]->data != top[0]->data)
      for (size_t n = 0; n < g.num_concats; n++)
        memcpy(top[0]->data + (n * top_axis + offset) * g.inner, bottom[i]->data + n * len * g.inner,
               len * g.inner * sizeof(float));
    offset += len;
  }
  return CG_OK;
}

static void concat_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  concat_shape g = {0};
  if (concat_geometry(l, bottom, &g)) return;
  size_t top_axis = (size_t)top[0]->shape[g.axis], offset = 0;
  for (int i = 0; i < l->num_bottoms; i++) {
    size_t len = (size_t)bottom[i]->shape[g.axis];
    if (propagate_down[i] && bottom[i]->diff != top[0]->diff)
      for (size_t n = 0; n < g.num_concats; n++)
        memcpy(bottom[i]->diff + n * len * g.inner, top[0]->diff + (n * top_axis + offset) * g.inner,
               len * g.inner * sizeof(float));
    offset += len;
  }
}

const cg_layer_ops cg_layer_concat = {.type = "Concat",
                                      .min_bottoms = 1,
                                      .max_bottoms = -1,
                                      .min_tops = 1,
                                      .max_tops = 1,
                                      .setup = concat_setup,
                                      .reshape = concat_reshape,
                                      .forward = concat_forward,
                                      .backward = concat_backward};
