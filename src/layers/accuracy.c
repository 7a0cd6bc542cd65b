/* Accuracy (Caffe's AccuracyLayer): the fraction of labels whose score is among
 * the top_k (ties count against: every class scoring >= the true class is "better").
 * Optional second top: per-class accuracy. Forward only. */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "layers/scratch.h"

static const Caffe__AccuracyParameter accuracy_defaults = CAFFE__ACCURACY_PARAMETER__INIT;

typedef struct accuracy_state {
  int top_k, axis_param;
  bool has_ignore_label;
  int ignore_label;
  int outer, inner, num_labels;
  float *nums; /* per class: labels seen */
  size_t nums_capacity;
} accuracy_state;

static int accuracy_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__AccuracyParameter *p = l->param->accuracy_param ? l->param->accuracy_param : &accuracy_defaults;
  if (p->top_k > (1u << 30)) return cg_error(CG_ERR_INVALID, "top_k %u is too large", p->top_k);
  accuracy_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  s->top_k = (int)p->top_k;
  s->axis_param = p->axis;
  s->has_ignore_label = p->has_ignore_label;
  s->ignore_label = p->ignore_label;
  l->priv = s;
  return CG_OK;
}

static int accuracy_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  accuracy_state *s = l->priv;
  const cg_blob *b = bottom[0];
  if (bottom[1]->count == 0 || (size_t)s->top_k > b->count / bottom[1]->count)
    return cg_error(CG_ERR_INVALID, "top_k (%d) must be less than or equal to the number of classes", s->top_k);
  int axis = cg_blob_canonical_axis(b, s->axis_param);
  if (axis < 0) return cg_error(CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", s->axis_param, b->num_axes);
  size_t outer = cg_blob_count_range(b, 0, axis), inner = cg_blob_count_from(b, axis + 1);
  if (outer > (1u << 30) || inner > (1u << 30)) return cg_error(CG_ERR_SHAPE, "bottom is too large");
  if (outer * inner != bottom[1]->count)
    return cg_error(CG_ERR_SHAPE,
                    "number of labels (%zu) must match number of predictions (%zu); e.g. with label axis 1 and "
                    "predictions (N, C, H, W), labels must be N*H*W integers in {0, ..., C-1}",
                    bottom[1]->count, outer * inner);
  s->outer = (int)outer, s->inner = (int)inner, s->num_labels = b->shape[axis];
  int rc = cg_blob_reshape(top[0], 0, NULL);
  if (!rc && l->num_tops > 1) rc = cg_blob_reshape(top[1], 1, &s->num_labels);
  if (!rc) rc = cg_scratch_floats(&s->nums, &s->nums_capacity, (size_t)s->num_labels);
  return rc;
}

static int accuracy_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  accuracy_state *s = l->priv;
  const float *x = bottom[0]->data, *label = bottom[1]->data;
  float *per_class = l->num_tops > 1 ? top[1]->data : NULL;
  size_t dim = (size_t)s->num_labels * s->inner;
  if (per_class) {
    memset(per_class, 0, (size_t)s->num_labels * sizeof(float));
    memset(s->nums, 0, (size_t)s->num_labels * sizeof(float));
  }
  long accuracy = 0, count = 0;
  for (int i = 0; i < s->outer; i++)
    for (int j = 0; j < s->inner; j++) {
      int y = (int)label[(size_t)i * s->inner + j];
      if (s->has_ignore_label && y == s->ignore_label) continue;
      if (y < 0 || y >= s->num_labels) {
        l->bad_sample = s->outer == bottom[0]->shape[0] ? i : -1; /* the outer axis is the batch's */
        return cg_error(CG_ERR_INVALID, "label %d is outside [0, %d) (and is not ignore_label)", y, s->num_labels);
      }
      if (per_class) s->nums[y]++;
      const float *xi = x + i * dim + j;
      float truth = xi[(size_t)y * s->inner];
      int better = -1; /* the true class counts itself */
      for (int k = 0; k < s->num_labels && better < s->top_k; k++) better += xi[(size_t)k * s->inner] >= truth;
      if (better < s->top_k) {
        accuracy++;
        if (per_class) per_class[y]++;
      }
      count++;
    }
  top[0]->data[0] = count == 0 ? 0.0f : (float)accuracy / (float)count;
  if (per_class)
    for (int c = 0; c < s->num_labels; c++) per_class[c] = s->nums[c] == 0 ? 0.0f : per_class[c] / s->nums[c];
  return CG_OK;
}

static void accuracy_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top, (void)propagate_down, (void)bottom; /* a metric: nothing flows back */
}

static void accuracy_destroy(cg_layer *l) {
  accuracy_state *s = l->priv;
  if (!s) return;
  free(s->nums);
  free(s);
  l->priv = NULL;
}

const cg_layer_ops cg_layer_accuracy = {
    .type = "Accuracy",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 2,
    .no_backward_bottoms = ~0u,
    .setup = accuracy_setup,
    .reshape = accuracy_reshape,
    .forward = accuracy_forward,
    .backward = accuracy_backward,
    .destroy = accuracy_destroy,
};
