/* Flatten and Reshape (Caffe's FlattenLayer and ReshapeLayer): change a blob's
 * shape, not its contents. Caffe shares memory with the bottom; here data is
 * copied forward and diffs copied back, which is simple and always safe. */
#include <string.h>

#include "core/layer.h"

static int not_in_place(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)l;
  CG_LAYER_CHECK(top[0] != bottom[0], CG_ERR_INVALID, "cannot work in place");
  return CG_OK;
}

static int copy_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)l;
  memcpy(top[0]->data, bottom[0]->data, bottom[0]->count * sizeof(float));
  return CG_OK;
}

static void copy_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l;
  if (propagate_down[0]) memcpy(bottom[0]->diff, top[0]->diff, bottom[0]->count * sizeof(float));
}

/* ---- Flatten: axes [axis, end_axis] become one ---- */

static int flatten_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const Caffe__FlattenParameter *fp = l->param->flatten_param;
  const cg_blob *b = bottom[0];
  int want_start = fp ? fp->axis : 1, want_end = fp ? fp->end_axis : -1;
  int start = cg_blob_canonical_axis(b, want_start), end = cg_blob_canonical_axis(b, want_end);
  CG_LAYER_CHECK(start >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", want_start, b->num_axes);
  CG_LAYER_CHECK(end >= 0, CG_ERR_INVALID, "end_axis %d is out of range for a %d-axis bottom", want_end, b->num_axes);
  CG_LAYER_CHECK(end + 1 >= start, CG_ERR_INVALID, "end_axis (%d) comes before axis (%d)", end, start);
  int shape[CG_BLOB_MAX_AXES], n = 0;
  for (int i = 0; i < start; i++) shape[n++] = b->shape[i];
  size_t flat = cg_blob_count_range(b, start, end + 1);
  CG_LAYER_CHECK(flat <= 0x7fffffff, CG_ERR_SHAPE, "flattened axis of %zu elements is too large", flat);
  shape[n++] = (int)flat;
  for (int i = end + 1; i < b->num_axes; i++) shape[n++] = b->shape[i];
  return cg_blob_reshape(top[0], n, shape);
}

const cg_layer_ops cg_layer_flatten = {.type = "Flatten",
                                       .min_bottoms = 1,
                                       .max_bottoms = 1,
                                       .min_tops = 1,
                                       .max_tops = 1,
                                       .setup = not_in_place,
                                       .reshape = flatten_reshape,
                                       .forward = copy_forward,
                                       .backward = copy_backward};

/* ---- Reshape: axes [axis, axis + num_axes) are replaced by reshape_param.shape,
 * where 0 copies the bottom's dimension and one -1 is inferred from the count ---- */

static int reshape_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  int rc = not_in_place(l, bottom, top);
  if (rc) return rc;
  const Caffe__ReshapeParameter *rp = l->param->reshape_param;
  const Caffe__BlobShape *s = rp ? rp->shape : NULL;
  size_t n = s ? s->n_dim : 0;
  int inferred = -1;
  for (size_t i = 0; i < n; i++) {
    CG_LAYER_CHECK(s->dim[i] >= -1 && s->dim[i] <= 0x7fffffff, CG_ERR_INVALID,
                   "shape dimension %zu is %lld; use a size, 0 to copy or -1 to infer", i, (long long)s->dim[i]);
    if (s->dim[i] == -1) {
      CG_LAYER_CHECK(inferred < 0, CG_ERR_INVALID, "shape has more than one -1 dimension (%d and %zu)", inferred, i);
      inferred = (int)i;
    }
  }
  CG_LAYER_CHECK(!rp || rp->num_axes >= -1, CG_ERR_INVALID, "num_axes must be >= 0, or -1 for all, got %d",
                 rp->num_axes);
  return CG_OK;
}

static int reshape_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const Caffe__ReshapeParameter *rp = l->param->reshape_param;
  const Caffe__BlobShape *s = rp ? rp->shape : NULL;
  const cg_blob *b = bottom[0];
  int want_axis = rp ? rp->axis : 0, num_axes = rp ? rp->num_axes : -1;
  int start = want_axis >= 0 ? want_axis : b->num_axes + want_axis + 1;
  CG_LAYER_CHECK(start >= 0 && start <= b->num_axes, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom",
                 want_axis, b->num_axes);
  int end = num_axes == -1 ? b->num_axes : start + num_axes;
  CG_LAYER_CHECK(end <= b->num_axes, CG_ERR_INVALID, "axis + num_axes = %d is out of range for a %d-axis bottom", end,
                 b->num_axes);
  int new_axes = s ? (int)s->n_dim : 0;
  int total_axes = b->num_axes - (end - start) + new_axes;
  CG_LAYER_CHECK(total_axes <= CG_BLOB_MAX_AXES, CG_ERR_SHAPE, "the new shape has %d axes (at most %d)", total_axes,
                 CG_BLOB_MAX_AXES);
  int shape[CG_BLOB_MAX_AXES], n = 0, inferred = -1;
  for (int i = 0; i < start; i++) shape[n++] = b->shape[i];
  for (int i = 0; i < new_axes; i++) {
    int d = (int)s->dim[i];
    if (d == 0) {
      CG_LAYER_CHECK(start + i < b->num_axes, CG_ERR_SHAPE,
                     "shape dimension %d is 0 (copy), but the bottom has no axis %d to copy", i, start + i);
      d = b->shape[start + i];
    } else if (d == -1) {
      inferred = n;
    }
    shape[n++] = d;
  }
  for (int i = end; i < b->num_axes; i++) shape[n++] = b->shape[i];
  if (inferred >= 0) {
    size_t known = 1;
    for (int i = 0; i < n; i++)
      if (i != inferred) known *= (size_t)shape[i];
    CG_LAYER_CHECK(known != 0 && b->count % known == 0, CG_ERR_SHAPE,
                   "bottom count (%zu) must be divisible by the product of the specified dimensions (%zu)", b->count,
                   known);
    shape[inferred] = (int)(b->count / known);
  }
  size_t count = 1;
  for (int i = 0; i < n; i++) count *= (size_t)shape[i];
  char buf[256];
  CG_LAYER_CHECK(count == b->count, CG_ERR_SHAPE, "cannot reshape a bottom of %zu elements (%s) to %zu elements",
                 b->count, cg_blob_shape_string(b, buf, sizeof buf), count);
  return cg_blob_reshape(top[0], n, shape);
}

const cg_layer_ops cg_layer_reshape = {.type = "Reshape",
                                       .min_bottoms = 1,
                                       .max_bottoms = 1,
                                       .min_tops = 1,
                                       .max_tops = 1,
                                       .setup = reshape_setup,
                                       .reshape = reshape_reshape,
                                       .forward = copy_forward,
                                       .backward = copy_backward};
