/* ArgMax (Caffe's ArgMaxLayer): the indices (and optionally the values) of the
 * top_k largest entries per item, or along one axis. Forward only; equal values
 * rank the higher index first, as Caffe's sort of (value, index) pairs does. */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"

typedef struct argmax_pair {
  float value;
  int index;
} argmax_pair;

typedef struct argmax_priv {
  bool out_max_val, has_axis;
  int top_k, axis;
  argmax_pair *pairs;
  size_t pairs_cap;
} argmax_priv;

static void argmax_destroy(cg_layer *l) {
  argmax_priv *p = l->priv;
  if (!p) return;
  free(p->pairs);
  free(p);
  l->priv = NULL;
}

static int argmax_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  static const Caffe__ArgMaxParameter defaults = CAFFE__ARG_MAX_PARAMETER__INIT;
  const Caffe__ArgMaxParameter *ap = l->param->argmax_param ? l->param->argmax_param : &defaults;
  const cg_blob *b = bottom[0];
  argmax_priv *p = calloc(1, sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = p;
  p->out_max_val = ap->out_max_val;
  p->has_axis = ap->has_axis;
  CG_LAYER_CHECK(ap->top_k >= 1 && ap->top_k <= 0x7fffffff, CG_ERR_INVALID, "top_k must be at least 1, got %u",
                 ap->top_k);
  p->top_k = (int)ap->top_k;
  if (p->has_axis) {
    p->axis = cg_blob_canonical_axis(b, ap->axis);
    CG_LAYER_CHECK(p->axis >= 0, CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", ap->axis, b->num_axes);
    CG_LAYER_CHECK(p->top_k <= b->shape[p->axis], CG_ERR_INVALID, "top_k (%d) is larger than axis %d (%d)", p->top_k,
                   p->axis, b->shape[p->axis]);
  } else {
    CG_LAYER_CHECK(b->num_axes >= 1, CG_ERR_SHAPE, "bottom needs at least one axis");
    CG_LAYER_CHECK((size_t)p->top_k <= cg_blob_count_from(b, 1), CG_ERR_INVALID,
                   "top_k (%d) is larger than the %zu entries per item", p->top_k, cg_blob_count_from(b, 1));
  }
  return CG_OK;
}

static int argmax_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  argmax_priv *p = l->priv;
  const cg_blob *b = bottom[0];
  int shape[CG_BLOB_MAX_AXES], n;
  size_t dim;
  if (p->has_axis) {
    CG_LAYER_CHECK(p->axis < b->num_axes, CG_ERR_SHAPE, "bottom lost axis %d", p->axis);
    n = b->num_axes;
    for (int i = 0; i < n; i++) shape[i] = b->shape[i];
    shape[p->axis] = p->top_k;
    dim = (size_t)b->shape[p->axis];
  } else {
    /* [num, 1 or 2 (indices, then values), top_k, 1...]: at least three axes */
    n = b->num_axes < 3 ? 3 : b->num_axes;
    for (int i = 0; i < n; i++) shape[i] = 1;
    shape[0] = b->shape[0];
    shape[1] = p->out_max_val ? 2 : 1;
    shape[2] = p->top_k;
    dim = cg_blob_count_from(b, 1);
  }
  CG_LAYER_CHECK((size_t)p->top_k <= dim, CG_ERR_SHAPE, "top_k (%d) is larger than the %zu entries to rank", p->top_k,
                 dim);
  if (dim > p->pairs_cap || !p->pairs) {
    argmax_pair *q = malloc((dim ? dim : 1) * sizeof *q);
    if (!q) return cg_error(CG_ERR_NOMEM, "out of memory");
    free(p->pairs);
    p->pairs = q;
    p->pairs_cap = dim;
  }
  return cg_blob_reshape(top[0], n, shape);
}

/* Descending by value, then by index (std::greater on (value, index) pairs). */
static int pair_descending(const void *a, const void *b) {
  const argmax_pair *x = a, *y = b;
  if (x->value != y->value) return x->value > y->value ? -1 : 1;
  return (x->index < y->index) - (x->index > y->index);
}

static int argmax_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  argmax_priv *p = l->priv;
  const float *x = bottom[0]->data;
  float *y = top[0]->data;
  size_t dim, stride; /* entries ranked together, and the distance between them */
  if (p->has_axis) {
    dim = (size_t)bottom[0]->shape[p->axis];
    stride = cg_blob_count_from(bottom[0], p->axis + 1);
  } else {
    dim = cg_blob_count_from(bottom[0], 1);
    stride = 1;
  }
  if (dim == 0) return CG_OK;
  size_t groups = bottom[0]->count / dim, k = (size_t)p->top_k;
  argmax_pair *pairs = p->pairs;
  for (size_t g = 0; g < groups; g++) {
    size_t outer = g / stride, inner = g % stride;
    for (size_t j = 0; j < dim; j++) {
      pairs[j].value = x[(outer * dim + j) * stride + inner];
      pairs[j].index = (int)j;
    }
    if (k == 1) { /* the common case: one pass */
      size_t best = 0;
      for (size_t j = 1; j < dim; j++)
        if (pair_descending(&pairs[j], &pairs[best]) < 0) best = j;
      argmax_pair t = pairs[0];
      pairs[0] = pairs[best];
      pairs[best] = t;
    } else {
      qsort(pairs, dim, sizeof *pairs, pair_descending);
    }
    for (size_t j = 0; j < k; j++) {
      if (p->has_axis) {
        y[(outer * k + j) * stride + inner] = p->out_max_val ? pairs[j].value : (float)pairs[j].index;
      } else if (p->out_max_val) {
        y[2 * g * k + j] = (float)pairs[j].index;
        y[2 * g * k + k + j] = pairs[j].value;
      } else {
        y[g * k + j] = (float)pairs[j].index;
      }
    }
  }
  return CG_OK;
}

static void argmax_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top; /* Caffe defines no gradient; a bottom that asks for one gets zeros */
  if (propagate_down[0]) memset(bottom[0]->diff, 0, bottom[0]->count * sizeof(float));
}

const cg_layer_ops cg_layer_argmax = {.type = "ArgMax",
                                      .min_bottoms = 1,
                                      .max_bottoms = 1,
                                      .min_tops = 1,
                                      .max_tops = 1,
                                      .no_backward_bottoms = 1u,
                                      .setup = argmax_setup,
                                      .reshape = argmax_reshape,
                                      .forward = argmax_forward,
                                      .backward = argmax_backward,
                                      .destroy = argmax_destroy};
