/* Scale (Caffe's ScaleLayer): top = bottom 0 * s (+ b with bias_term), s
 * broadcast over the axes outside [axis, axis + s's axes). s is bottom 1 when
 * given, else a learned parameter; the bias is always learned. Works in place. */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "layers/scratch.h"

enum { PAR_MIN = 1 << 15 };

/* A blob seen as [outer, dim, inner] against a per-`dim` factor. */
typedef struct bcast {
  size_t outer, dim, inner;
} bcast;

typedef struct scale_priv {
  bcast scale, bias;
  int bias_param; /* index of the bias in l->params, -1 without bias_term */
  float *saved;   /* the input, saved by an in-place forward */
  size_t saved_cap;
} scale_priv;

static void scale_destroy(cg_layer *l) {
  scale_priv *p = l->priv;
  if (!p) return;
  free(p->saved);
  free(p);
  l->priv = NULL;
}

/* Declares a learned blob shaped like bottom's axes [axis, axis + num_axes) (-1: to the end). */
static int add_broadcast_param(cg_layer *l, const cg_blob *b, int want_axis, int num_axes, cg_filler filler) {
  int axis = cg_blob_canonical_axis(b, want_axis);
  CG_LAYER_CHECK(axis >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", want_axis, b->num_axes);
  CG_LAYER_CHECK(num_axes >= -1, CG_ERR_INVALID, "num_axes must be >= 0, or -1 to extend to the end; got %d", num_axes);
  CG_LAYER_CHECK(num_axes < 0 || b->num_axes >= axis + num_axes, CG_ERR_SHAPE,
                 "the parameter would extend past bottom 0's %d axes (axis %d, num_axes %d)", b->num_axes, axis,
                 num_axes);
  int end = num_axes < 0 ? b->num_axes : axis + num_axes;
  if (!cg_layer_add_param(l, end - axis, b->shape + axis, filler)) return CG_ERR_INVALID;
  return CG_OK;
}

/* How `factor` lines up with bottom b (a scalar factor takes axis 0). */
static int broadcast_shape(const cg_blob *b, const cg_blob *factor, int want_axis, bcast *out) {
  int axis = factor->num_axes == 0 ? 0 : cg_blob_canonical_axis(b, want_axis);
  CG_LAYER_CHECK(axis >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", want_axis, b->num_axes);
  CG_LAYER_CHECK(b->num_axes >= axis + factor->num_axes, CG_ERR_SHAPE,
                 "a %d-axis factor extends past bottom 0's %d axes from axis %d", factor->num_axes, b->num_axes, axis);
  for (int i = 0; i < factor->num_axes; i++)
    CG_LAYER_CHECK(b->shape[axis + i] == factor->shape[i], CG_ERR_SHAPE,
                   "bottom 0 is %d on axis %d but the factor is %d on its axis %d", b->shape[axis + i], axis + i,
                   factor->shape[i], i);
  out->outer = cg_blob_count_range(b, 0, axis);
  out->dim = factor->count;
  out->inner = cg_blob_count_from(b, axis + factor->num_axes);
  return CG_OK;
}

static int scale_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  static const Caffe__ScaleParameter defaults = CAFFE__SCALE_PARAMETER__INIT;
  const Caffe__ScaleParameter *sp = l->param->scale_param ? l->param->scale_param : &defaults;
  scale_priv *p = calloc(1, sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = p;
  p->bias_param = -1;
  int rc;
  if (l->num_bottoms == 1) {
    cg_filler filler = cg_filler_constant(1.0f); /* identity unless told otherwise */
    if (sp->filler && (rc = cg_filler_from_param(sp->filler, &filler))) return rc;
    if ((rc = add_broadcast_param(l, bottom[0], sp->axis, sp->num_axes, filler))) return rc;
  }
  if (sp->bias_term) {
    cg_filler filler = cg_filler_constant(0.0f);
    if (sp->bias_filler && (rc = cg_filler_from_param(sp->bias_filler, &filler))) return rc;
    int num_axes = l->num_bottoms > 1 ? bottom[1]->num_axes : sp->num_axes;
    p->bias_param = l->num_params;
    if ((rc = add_broadcast_param(l, bottom[0], sp->axis, num_axes, filler))) return rc;
  }
  return CG_OK;
}

static int scale_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  scale_priv *p = l->priv;
  int want = l->param->scale_param ? l->param->scale_param->axis : 1;
  const cg_blob *factor = l->num_bottoms > 1 ? bottom[1] : l->params[0];
  int rc = broadcast_shape(bottom[0], factor, want, &p->scale);
  if (!rc && p->bias_param >= 0) rc = broadcast_shape(bottom[0], l->params[p->bias_param], want, &p->bias);
  if (rc) return rc;
  if (top[0] == bottom[0]) return cg_scratch_floats(&p->saved, &p->saved_cap, bottom[0]->count);
  return cg_blob_reshape_like(top[0], bottom[0]);
}

static int scale_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  scale_priv *p = l->priv;
  size_t n = bottom[0]->count;
  if (top[0] == bottom[0]) memcpy(p->saved, bottom[0]->data, n * sizeof(float));
  const float *x = bottom[0]->data, *s = (l->num_bottoms > 1 ? bottom[1] : l->params[0])->data;
  float *y = top[0]->data;
  bcast g = p->scale;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t r = 0; r < g.outer * g.dim; r++) {
    float f = s[r % g.dim];
    for (size_t i = 0; i < g.inner; i++) y[r * g.inner + i] = x[r * g.inner + i] * f;
  }
  if (p->bias_param >= 0) {
    const float *b = l->params[p->bias_param]->data;
    bcast h = p->bias;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t r = 0; r < h.outer * h.dim; r++) {
      float v = b[r % h.dim];
      for (size_t i = 0; i < h.inner; i++) y[r * h.inner + i] += v;
    }
  }
  return CG_OK;
}

/* grad[d] (+)= sum over outer and inner of a * b (b NULL: of a alone). One d per
 * thread, each summed in a fixed order in double. */
static void reduce_broadcast(const bcast *g, const float *a, const float *b, float *grad, bool accumulate,
                             size_t count) {
  size_t outer = g->outer, dim = g->dim, inner = g->inner;
#pragma omp parallel for schedule(static) if (count >= PAR_MIN)
  for (size_t d = 0; d < dim; d++) {
    double s = 0;
    for (size_t o = 0; o < outer; o++) {
      size_t base = (o * dim + d) * inner;
      if (b)
        for (size_t i = 0; i < inner; i++) s += (double)a[base + i] * b[base + i];
      else
        for (size_t i = 0; i < inner; i++) s += a[base + i];
    }
    grad[d] = accumulate ? grad[d] + (float)s : (float)s;
  }
}

static void scale_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  scale_priv *p = l->priv;
  const float *dy = top[0]->diff;
  size_t n = top[0]->count;
  if (p->bias_param >= 0) reduce_broadcast(&p->bias, dy, NULL, l->params[p->bias_param]->diff, true, n);
  bool learned = l->num_bottoms == 1;
  cg_blob *factor = learned ? l->params[0] : bottom[1];
  if (learned || propagate_down[1]) {
    const float *x = top[0] == bottom[0] ? p->saved : bottom[0]->data;
    reduce_broadcast(&p->scale, dy, x, factor->diff, learned, n);
  }
  if (!propagate_down[0]) return;
  const float *s = factor->data;
  float *dx = bottom[0]->diff;
  bcast g = p->scale;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t r = 0; r < g.outer * g.dim; r++) {
    float f = s[r % g.dim];
    for (size_t i = 0; i < g.inner; i++) dx[r * g.inner + i] = dy[r * g.inner + i] * f;
  }
}

const cg_layer_ops cg_layer_scale = {.type = "Scale",
                                     .min_bottoms = 1,
                                     .max_bottoms = 2,
                                     .min_tops = 1,
                                     .max_tops = 1,
                                     .setup = scale_setup,
                                     .reshape = scale_reshape,
                                     .forward = scale_forward,
                                     .backward = scale_backward,
                                     .destroy = scale_destroy};
