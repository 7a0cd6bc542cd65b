/* Crop (Caffe's CropLayer): cuts bottom 0 down to the shape of bottom 1 on every
 * axis from `axis` on, starting at the given offsets (one for all axes, or one per
 * axis). Bottom 1 only supplies the shape and gets no gradient. */
#include <string.h>

#include "core/layer.h"

typedef struct crop_geom {
  int num_axes;
  int offsets[CG_BLOB_MAX_AXES];
} crop_geom;

static int crop_offsets(const cg_layer *l, cg_blob *const *bottom, crop_geom *g) {
  const Caffe__CropParameter *cp = l->param->crop_param;
  const cg_blob *a = bottom[0], *b = bottom[1];
  int want = cp ? cp->axis : 2, start = cg_blob_canonical_axis(a, want);
  size_t n_offset = cp ? cp->n_offset : 0;
  CG_LAYER_CHECK(start >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", want, a->num_axes);
  CG_LAYER_CHECK(n_offset <= 1 || (size_t)start + n_offset == (size_t)a->num_axes, CG_ERR_INVALID,
                 "%zu offsets given; there must be one, or one per axis from axis %d on (%d)", n_offset, start,
                 a->num_axes - start);
  CG_LAYER_CHECK(b->num_axes == a->num_axes, CG_ERR_SHAPE,
                 "bottom 1 has %d axes, bottom 0 has %d; they must have the same number", b->num_axes, a->num_axes);
  g->num_axes = a->num_axes;
  for (int i = 0; i < a->num_axes; i++) {
    long off = 0;
    if (i >= start) {
      if (n_offset == 1)
        off = cp->offset[0];
      else if (n_offset > 1)
        off = cp->offset[i - start];
      CG_LAYER_CHECK((long)a->shape[i] - off >= b->shape[i], CG_ERR_SHAPE,
                     "the crop on axis %d is out of bounds: size %d at offset %ld in %d", i, b->shape[i], off,
                     a->shape[i]);
    }
    g->offsets[i] = (int)off;
  }
  return CG_OK;
}

static int crop_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  const Caffe__CropParameter *cp = l->param->crop_param;
  int want = cp ? cp->axis : 2, start = cg_blob_canonical_axis(bottom[0], want);
  CG_LAYER_CHECK(start >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", want, bottom[0]->num_axes);
  size_t n_offset = cp ? cp->n_offset : 0;
  CG_LAYER_CHECK(n_offset <= 1 || (size_t)start + n_offset == (size_t)bottom[0]->num_axes, CG_ERR_INVALID,
                 "%zu offsets given; there must be one, or one per axis from axis %d on (%d)", n_offset, start,
                 bottom[0]->num_axes - start);
  return CG_OK;
}

static int crop_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  crop_geom g;
  int rc = crop_offsets(l, bottom, &g);
  if (rc) return rc;
  const Caffe__CropParameter *cp = l->param->crop_param;
  int start = cg_blob_canonical_axis(bottom[0], cp ? cp->axis : 2);
  int shape[CG_BLOB_MAX_AXES];
  for (int i = 0; i < g.num_axes; i++) shape[i] = i >= start ? bottom[1]->shape[i] : bottom[0]->shape[i];
  return cg_blob_reshape(top[0], g.num_axes, shape);
}

/* Walks every row (last axis) of the top and copies it from or to the matching
 * row of bottom 0. `to_bottom` copies top -> bottom (backward). */
static void crop_copy(const crop_geom *g, const cg_blob *big, const cg_blob *small, float *big_mem, float *small_mem,
                      bool to_bottom) {
  int na = g->num_axes;
  if (small->count == 0) return;
  if (na == 0) {
    if (to_bottom)
      big_mem[0] = small_mem[0];
    else
      small_mem[0] = big_mem[0];
    return;
  }
  size_t rows = small->count / (size_t)small->shape[na - 1], row_len = (size_t)small->shape[na - 1];
#pragma omp parallel for schedule(static) if (small->count >= (1 << 15))
  for (size_t r = 0; r < rows; r++) {
    /* the row's index in the top, axis by axis, mapped into bottom 0 */
    size_t rest = r, big_index = 0, stride = 1;
    for (int i = na - 1; i >= 0; i--) {
      size_t idx = 0;
      if (i == na - 1) {
        idx = (size_t)g->offsets[i];
      } else {
        idx = rest % (size_t)small->shape[i] + (size_t)g->offsets[i];
        rest /= (size_t)small->shape[i];
      }
      big_index += idx * stride;
      stride *= (size_t)big->shape[i];
    }
    if (to_bottom)
      memcpy(big_mem + big_index, small_mem + r * row_len, row_len * sizeof(float));
    else
      memcpy(small_mem + r * row_len, big_mem + big_index, row_len * sizeof(float));
  }
}

static int crop_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  crop_geom g;
  int rc = crop_offsets(l, bottom, &g);
  if (rc) return rc;
  crop_copy(&g, bottom[0], top[0], bottom[0]->data, top[0]->data, false);
  return CG_OK;
}

static void crop_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (l->num_bottoms > 1 && propagate_down[1]) memset(bottom[1]->diff, 0, bottom[1]->count * sizeof(float));
  if (!propagate_down[0]) return;
  crop_geom g;
  if (crop_offsets(l, bottom, &g)) return;
  memset(bottom[0]->diff, 0, bottom[0]->count * sizeof(float));
  crop_copy(&g, bottom[0], top[0], bottom[0]->diff, top[0]->diff, true);
}

const cg_layer_ops cg_layer_crop = {.type = "Crop",
                                    .min_bottoms = 2,
                                    .max_bottoms = 2,
                                    .min_tops = 1,
                                    .max_tops = 1,
                                    .no_backward_bottoms = 1u << 1,
                                    .setup = crop_setup,
                                    .reshape = crop_reshape,
                                    .forward = crop_forward,
                                    .backward = crop_backward};
