/* SoftmaxWithLoss (Caffe's SoftmaxWithLossLayer): softmax over softmax_param.axis,
 * then the mean of -log(max(p[label], FLT_MIN)) over labels, with ignore_label and
 * Caffe's normalisation modes. Optional second top: the probabilities. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/loss_common.h"
#include "layers/scratch.h"
#include "layers/softmax.h"

typedef struct softmax_loss_state {
  int axis_param, normalization;
  bool has_ignore_label;
  int ignore_label;
  int outer, channels, inner;
  float normalizer; /* from the last forward */
  float *prob, *scratch;
  size_t prob_capacity, scratch_capacity;
} softmax_loss_state;

static int softmax_loss_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__LossParameter *lp = l->param->loss_param;
  softmax_loss_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = s;
  s->axis_param = l->param->softmax_param ? l->param->softmax_param->axis : 1;
  s->normalization = cg_loss_normalization(lp, CG_NORM_VALID);
  if (s->normalization < CG_NORM_FULL || s->normalization > CG_NORM_NONE)
    return cg_error(CG_ERR_INVALID, "unknown normalization mode %d", s->normalization);
  s->has_ignore_label = lp && lp->has_ignore_label;
  s->ignore_label = s->has_ignore_label ? lp->ignore_label : 0;
  return CG_OK;
}

static int softmax_loss_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  softmax_loss_state *s = l->priv;
  int rc = cg_loss_reshape_common(bottom, top);
  if (rc) return rc;
  const cg_blob *b = bottom[0];
  int axis = cg_blob_canonical_axis(b, s->axis_param);
  if (axis < 0) return cg_error(CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", s->axis_param, b->num_axes);
  size_t outer = cg_blob_count_range(b, 0, axis), inner = cg_blob_count_from(b, axis + 1);
  if (outer > (1u << 30) || inner > (1u << 30)) return cg_error(CG_ERR_SHAPE, "bottom is too large");
  if (outer * inner != bottom[1]->count)
    return cg_error(CG_ERR_SHAPE,
                    "number of labels (%zu) must match number of predictions (%zu); e.g. with softmax axis 1 and "
                    "predictions (N, C, H, W), labels must be N*H*W integers in {0, ..., C-1}",
                    bottom[1]->count, outer * inner);
  s->outer = (int)outer, s->channels = b->shape[axis], s->inner = (int)inner;
  if (l->num_tops > 1 && (rc = cg_blob_reshape_like(top[1], b))) return rc;
  rc = cg_scratch_floats(&s->prob, &s->prob_capacity, b->count);
  if (!rc) rc = cg_scratch_floats(&s->scratch, &s->scratch_capacity, inner);
  return rc;
}

static int softmax_loss_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  softmax_loss_state *s = l->priv;
  cg_softmax_forward_cpu(s->outer, s->channels, s->inner, bottom[0]->data, s->prob, s->scratch);
  const float *label = bottom[1]->data;
  size_t dim = (size_t)s->channels * s->inner;
  double loss = 0;
  long count = 0;
  for (int i = 0; i < s->outer; i++)
    for (int j = 0; j < s->inner; j++) {
      int label_value = (int)label[(size_t)i * s->inner + j];
      if (s->has_ignore_label && label_value == s->ignore_label) continue;
      if (label_value < 0 || label_value >= s->channels) {
        l->bad_sample = s->outer == bottom[0]->shape[0] ? i : -1; /* the outer axis is the batch's */
        return cg_error(CG_ERR_INVALID, "label %d is outside [0, %d) (and is not ignore_label)", label_value,
                        s->channels);
      }
      float p = s->prob[i * dim + (size_t)label_value * s->inner + j];
      loss -= log(p > FLT_MIN ? p : FLT_MIN);
      count++;
    }
  s->normalizer = cg_loss_normalizer(s->normalization, s->outer, s->inner, count);
  top[0]->data[0] = (float)(loss / s->normalizer);
  if (l->num_tops > 1) memcpy(top[1]->data, s->prob, bottom[0]->count * sizeof(float));
  return CG_OK;
}

/* d loss / d x = (p - onehot(label)) * loss_weight / normalizer; ignored positions get 0. */
static void softmax_loss_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down,
                                  cg_blob *const *bottom) {
  softmax_loss_state *s = l->priv;
  if (!propagate_down[0]) return;
  float *diff = bottom[0]->diff;
  const float *label = bottom[1]->data;
  size_t dim = (size_t)s->channels * s->inner;
  memcpy(diff, s->prob, bottom[0]->count * sizeof(float));
  for (int i = 0; i < s->outer; i++)
    for (int j = 0; j < s->inner; j++) {
      int label_value = (int)label[(size_t)i * s->inner + j];
      if (s->has_ignore_label && label_value == s->ignore_label) {
        for (int c = 0; c < s->channels; c++) diff[i * dim + (size_t)c * s->inner + j] = 0;
      } else if (label_value >= 0 && label_value < s->channels) {
        diff[i * dim + (size_t)label_value * s->inner + j] -= 1;
      }
    }
  float scale = top[0]->diff[0] / s->normalizer;
  for (size_t i = 0; i < bottom[0]->count; i++) diff[i] *= scale;
}

static void softmax_loss_destroy(cg_layer *l) {
  softmax_loss_state *s = l->priv;
  if (!s) return;
  free(s->prob);
  free(s->scratch);
  free(s);
  l->priv = NULL;
}

const cg_layer_ops cg_layer_softmax_with_loss = {
    .type = "SoftmaxWithLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 2,
    .is_loss = true,
    .no_backward_bottoms = 1u << 1,
    .setup = softmax_loss_setup,
    .reshape = softmax_loss_reshape,
    .forward = softmax_loss_forward,
    .backward = softmax_loss_backward,
    .destroy = softmax_loss_destroy,
};
