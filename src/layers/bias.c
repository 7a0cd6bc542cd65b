/* Bias (Caffe's BiasLayer): top = bottom 0 + b, with b broadcast over the axes
 * outside [axis, axis + b's axes). b is bottom 1 when given, else a learned
 * parameter shaped like bottom 0's axes [axis, axis + num_axes). */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

enum { PAR_MIN = 1 << 15 };

typedef struct bias_priv {
  size_t outer, dim, inner; /* bottom 0 seen as [outer, dim, inner]; dim = count of b */
} bias_priv;

static void bias_destroy(cg_layer *l) {
  free(l->priv);
  l->priv = NULL;
}

static int bias_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  bias_priv *p = calloc(1, sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = p;
  if (l->num_bottoms > 1) return CG_OK;
  const Caffe__BiasParameter *bp = l->param->bias_param;
  const cg_blob *b = bottom[0];
  int want = bp ? bp->axis : 1, num_axes = bp ? bp->num_axes : 1;
  int axis = cg_blob_canonical_axis(b, want);
  CG_LAYER_CHECK(axis >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", want, b->num_axes);
  CG_LAYER_CHECK(num_axes >= -1, CG_ERR_INVALID, "num_axes must be >= 0, or -1 to extend to the end; got %d", num_axes);
  CG_LAYER_CHECK(num_axes < 0 || b->num_axes >= axis + num_axes, CG_ERR_SHAPE,
                 "the bias would extend past bottom 0's %d axes (axis %d, num_axes %d)", b->num_axes, axis, num_axes);
  int end = num_axes < 0 ? b->num_axes : axis + num_axes;
  cg_filler filler = cg_filler_constant(0.0f);
  if (bp && bp->filler) {
    int rc = cg_filler_from_param(bp->filler, &filler);
    if (rc) return rc;
  }
  if (!cg_layer_add_param(l, end - axis, b->shape + axis, filler)) return CG_ERR_INVALID;
  return CG_OK;
}

static int bias_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  bias_priv *p = l->priv;
  const Caffe__BiasParameter *bp = l->param->bias_param;
  const cg_blob *b = bottom[0], *bias = l->num_bottoms > 1 ? bottom[1] : l->params[0];
  /* a scalar bias applies the same anywhere: take axis 0 */
  int want = bp ? bp->axis : 1, axis = bias->num_axes == 0 ? 0 : cg_blob_canonical_axis(b, want);
  CG_LAYER_CHECK(axis >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", want, b->num_axes);
  CG_LAYER_CHECK(b->num_axes >= axis + bias->num_axes, CG_ERR_SHAPE,
                 "the bias's %d axes extend past bottom 0's %d axes from axis %d", bias->num_axes, b->num_axes, axis);
  for (int i = 0; i < bias->num_axes; i++)
    CG_LAYER_CHECK(b->shape[axis + i] == bias->shape[i], CG_ERR_SHAPE,
                   "bottom 0 is %d on axis %d but the bias is %d on its axis %d", b->shape[axis + i], axis + i,
                   bias->shape[i], i);
  p->outer = cg_blob_count_range(b, 0, axis);
  p->dim = bias->count;
  p->inner = cg_blob_count_from(b, axis + bias->num_axes);
  if (top[0] != bottom[0]) return cg_blob_reshape_like(top[0], bottom[0]);
  return CG_OK;
}

static int bias_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const bias_priv *p = l->priv;
  const float *x = bottom[0]->data, *bias = (l->num_bottoms > 1 ? bottom[1] : l->params[0])->data;
  float *y = top[0]->data;
  size_t outer = p->outer, dim = p->dim, inner = p->inner;
#pragma omp parallel for schedule(static) if (bottom[0]->count >= PAR_MIN)
  for (size_t r = 0; r < outer * dim; r++) {
    float v = bias[r % dim];
    for (size_t i = 0; i < inner; i++) y[r * inner + i] = x[r * inner + i] + v;
  }
  return CG_OK;
}

static void bias_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  const bias_priv *p = l->priv;
  const float *dy = top[0]->diff;
  size_t outer = p->outer, dim = p->dim, inner = p->inner;
  bool learned = l->num_bottoms == 1;
  if (learned || propagate_down[1]) {
    float *db = (learned ? l->params[0] : bottom[1])->diff;
    /* one bias element per thread, each summed in a fixed order */
#pragma omp parallel for schedule(static) if (top[0]->count >= PAR_MIN)
    for (size_t d = 0; d < dim; d++) {
      double s = 0;
      for (size_t n = 0; n < outer; n++)
        for (size_t i = 0; i < inner; i++) s += dy[(n * dim + d) * inner + i];
      db[d] = learned ? db[d] + (float)s : (float)s;
    }
  }
  if (propagate_down[0] && bottom[0]->diff != dy) memcpy(bottom[0]->diff, dy, bottom[0]->count * sizeof(float));
}

const cg_layer_ops cg_layer_bias = {.type = "Bias",
                                    .min_bottoms = 1,
                                    .max_bottoms = 2,
                                    .min_tops = 1,
                                    .max_tops = 1,
                                    .setup = bias_setup,
                                    .reshape = bias_reshape,
                                    .forward = bias_forward,
                                    .backward = bias_backward,
                                    .destroy = bias_destroy};
