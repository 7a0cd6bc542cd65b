/* Slice (Caffe's SliceLayer): cuts its bottom along one axis (`axis`, or the
 * legacy `slice_dim`) at the given slice points, or into equal parts when none
 * are given. Data is copied forward and diffs copied back. */
#include <string.h>

#include "core/layer.h"

static int slice_axis(const cg_layer *l, const cg_blob *b, int *axis) {
  const Caffe__SliceParameter *sp = l->param->slice_param;
  if (sp && sp->has_slice_dim) {
    CG_LAYER_CHECK((int)sp->slice_dim >= 0 && (int)sp->slice_dim < b->num_axes, CG_ERR_INVALID,
                   "slice_dim %u is out of range for a %d-axis bottom", sp->slice_dim, b->num_axes);
    *axis = (int)sp->slice_dim;
    return CG_OK;
  }
  int want = sp ? sp->axis : 1;
  *axis = cg_blob_canonical_axis(b, want);
  CG_LAYER_CHECK(*axis >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", want, b->num_axes);
  return CG_OK;
}

static int slice_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  const Caffe__SliceParameter *sp = l->param->slice_param;
  CG_LAYER_CHECK(!(sp && sp->has_axis && sp->has_slice_dim), CG_ERR_INVALID,
                 "give either slice_param.axis or slice_param.slice_dim, not both");
  int axis = 0;
  return slice_axis(l, bottom[0], &axis);
}

static int slice_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const Caffe__SliceParameter *sp = l->param->slice_param;
  int axis = 0, rc = slice_axis(l, bottom[0], &axis);
  if (rc) return rc;
  const cg_blob *b = bottom[0];
  int shape[CG_BLOB_MAX_AXES];
  memcpy(shape, b->shape, sizeof(int) * (size_t)b->num_axes);
  int total = b->shape[axis], nt = l->num_tops;
  size_t points = sp ? sp->n_slice_point : 0;
  if (points) {
    CG_LAYER_CHECK(points == (size_t)nt - 1, CG_ERR_INVALID, "%zu slice points make %zu tops, but the layer has %d",
                   points, points + 1, nt);
    CG_LAYER_CHECK(nt <= total, CG_ERR_SHAPE, "%d tops cannot slice an axis of size %d", nt, total);
    long prev = 0;
    for (int i = 0; i < nt; i++) {
      long end = i < nt - 1 ? (long)sp->slice_point[i] : total;
      CG_LAYER_CHECK(i == nt - 1 ? end >= prev : end > prev, CG_ERR_INVALID,
                     "slice points must increase and stay within the axis size %d", total);
      shape[axis] = (int)(end - prev);
      rc = cg_blob_reshape(top[i], b->num_axes, shape);
      if (rc) return rc;
      prev = end;
    }
  } else {
    CG_LAYER_CHECK(total % nt == 0, CG_ERR_SHAPE, "%d tops do not evenly divide the slice axis (size %d)", nt, total);
    shape[axis] = total / nt;
    for (int i = 0; i < nt; i++) {
      rc = cg_blob_reshape(top[i], b->num_axes, shape);
      if (rc) return rc;
    }
  }
  return CG_OK;
}

static int slice_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  int axis = 0, rc = slice_axis(l, bottom[0], &axis);
  if (rc) return rc;
  size_t num = cg_blob_count_range(bottom[0], 0, axis), inner = cg_blob_count_from(bottom[0], axis + 1);
  size_t bottom_axis = (size_t)bottom[0]->shape[axis], offset = 0;
  for (int i = 0; i < l->num_tops; i++) {
    size_t len = (size_t)top[i]->shape[axis];
    if (top[i]->data != bottom[0]->data)
      for (size_t n = 0; n < num; n++)
        memcpy(top[i]->data + n * len * inner, bottom[0]->data + (n * bottom_axis + offset) * inner,
               len * inner * sizeof(float));
    offset += len;
  }
  return CG_OK;
}

static void slice_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  int axis = 0;
  if (!propagate_down[0] || slice_axis(l, bottom[0], &axis)) return;
  size_t num = cg_blob_count_range(bottom[0], 0, axis), inner = cg_blob_count_from(bottom[0], axis + 1);
  size_t bottom_axis = (size_t)bottom[0]->shape[axis], offset = 0;
  for (int i = 0; i < l->num_tops; i++) {
    size_t len = (size_t)top[i]->shape[axis];
    if (top[i]->diff != bottom[0]->diff)
      for (size_t n = 0; n < num; n++)
        memcpy(bottom[0]->diff + (n * bottom_axis + offset) * inner, top[i]->diff + n * len * inner,
               len * inner * sizeof(float));
    offset += len;
  }
}

const cg_layer_ops cg_layer_slice = {.type = "Slice",
                                     .min_bottoms = 1,
                                     .max_bottoms = 1,
                                     .min_tops = 1,
                                     .max_tops = -1,
                                     .setup = slice_setup,
                                     .reshape = slice_reshape,
                                     .forward = slice_forward,
                                     .backward = slice_backward};
