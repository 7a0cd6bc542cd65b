/* Softmax (Caffe's SoftmaxLayer) over one axis, numerically stable (the maximum
 * is subtracted first), and the kernels SoftmaxWithLoss reuses (softmax.h). */
#include <math.h>
#include <stdlib.h>

#include "core/layer.h"
#include "layers/scratch.h"
#include "layers/softmax.h"

void cg_softmax_forward_cpu(int outer, int channels, int inner, const float *x, float *y, float *scratch) {
  size_t dim = (size_t)channels * inner;
  for (int i = 0; i < outer; i++) {
    const float *xi = x + i * dim;
    float *yi = y + i * dim;
    for (int j = 0; j < inner; j++) scratch[j] = xi[j];
    for (int c = 1; c < channels; c++)
      for (int j = 0; j < inner; j++) scratch[j] = fmaxf(scratch[j], xi[(size_t)c * inner + j]);
    for (int c = 0; c < channels; c++)
      for (int j = 0; j < inner; j++) yi[(size_t)c * inner + j] = expf(xi[(size_t)c * inner + j] - scratch[j]);
    for (int j = 0; j < inner; j++) scratch[j] = 0;
    for (int c = 0; c < channels; c++)
      for (int j = 0; j < inner; j++) scratch[j] += yi[(size_t)c * inner + j];
    for (int c = 0; c < channels; c++)
      for (int j = 0; j < inner; j++) yi[(size_t)c * inner + j] /= scratch[j];
  }
}

void cg_softmax_backward_cpu(int outer, int channels, int inner, const float *y, const float *dy, float *dx,
                             float *scratch) {
  size_t dim = (size_t)channels * inner;
  for (int i = 0; i < outer; i++) {
    const float *yi = y + i * dim, *dyi = dy + i * dim;
    float *dxi = dx + i * dim;
    for (int j = 0; j < inner; j++) scratch[j] = 0;
    for (int c = 0; c < channels; c++)
      for (int j = 0; j < inner; j++) scratch[j] += dyi[(size_t)c * inner + j] * yi[(size_t)c * inner + j];
    for (int c = 0; c < channels; c++)
      for (int j = 0; j < inner; j++) {
        size_t k = (size_t)c * inner + j;
        dxi[k] = (dyi[k] - scratch[j]) * yi[k];
      }
  }
}

static const Caffe__SoftmaxParameter softmax_defaults = CAFFE__SOFTMAX_PARAMETER__INIT;

typedef struct softmax_state {
  int axis_param, outer, channels, inner;
  float *scratch;
  size_t scratch_capacity;
} softmax_state;

static int softmax_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__SoftmaxParameter *p = l->param->softmax_param ? l->param->softmax_param : &softmax_defaults;
  softmax_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  s->axis_param = p->axis;
  l->priv = s;
  return CG_OK;
}

static int softmax_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  softmax_state *s = l->priv;
  const cg_blob *b = bottom[0];
  int axis = cg_blob_canonical_axis(b, s->axis_param);
  if (axis < 0) return cg_error(CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", s->axis_param, b->num_axes);
  size_t outer = cg_blob_count_range(b, 0, axis), inner = cg_blob_count_from(b, axis + 1);
  if (outer > (1u << 30) || inner > (1u << 30)) return cg_error(CG_ERR_SHAPE, "bottom is too large");
  s->outer = (int)outer, s->channels = b->shape[axis], s->inner = (int)inner;
  int rc = top[0] == bottom[0] ? CG_OK : cg_blob_reshape_like(top[0], b);
  if (!rc) rc = cg_scratch_floats(&s->scratch, &s->scratch_capacity, inner);
  return rc;
}

static int softmax_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  softmax_state *s = l->priv;
  cg_softmax_forward_cpu(s->outer, s->channels, s->inner, bottom[0]->data, top[0]->data, s->scratch);
  return CG_OK;
}

static void softmax_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  softmax_state *s = l->priv;
  if (!propagate_down[0]) return;
  cg_softmax_backward_cpu(s->outer, s->channels, s->inner, top[0]->data, top[0]->diff, bottom[0]->diff, s->scratch);
}

static void softmax_destroy(cg_layer *l) {
  softmax_state *s = l->priv;
  if (!s) return;
  free(s->scratch);
  free(s);
  l->priv = NULL;
}

const cg_layer_ops cg_layer_softmax = {
    .type = "Softmax",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = softmax_setup,
    .reshape = softmax_reshape,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .destroy = softmax_destroy,
};
