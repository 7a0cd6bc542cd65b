/* The simple loss layers, each Caffe's: EuclideanLoss (sum((a-b)^2) / 2N),
 * SigmoidCrossEntropyLoss (stable form, ignore_label, normalisation), HingeLoss
 * (L1/L2, one-vs-all) and MultinomialLogisticLoss (-log p[label] on probabilities). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/loss_common.h"
#include "layers/scratch.h"

/* One scratch buffer and a normaliser are all any of these keep. */
typedef struct loss_state {
  float *buf;
  size_t buf_capacity;
  int num, dim;
  int normalization;
  bool has_ignore_label;
  int ignore_label;
  int norm; /* HingeLoss: 1 or 2 */
  float normalizer;
} loss_state;

static int loss_state_new(cg_layer *l) {
  loss_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = s;
  return CG_OK;
}

static void loss_state_destroy(cg_layer *l) {
  loss_state *s = l->priv;
  if (!s) return;
  free(s->buf);
  free(s);
  l->priv = NULL;
}

static int simple_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  return loss_state_new(l);
}

/* Checks a label is a class index in [0, dim). */
static int check_label(int label, int dim) {
  if (label < 0 || label >= dim) return cg_error(CG_ERR_INVALID, "label %d is outside [0, %d)", label, dim);
  return CG_OK;
}

/* ---- EuclideanLoss: loss = sum((b0 - b1)^2) / (2 num); both bottoms get gradients. */

static int euclidean_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  loss_state *s = l->priv;
  int rc = cg_loss_reshape_common(bottom, top);
  if (rc) return rc;
  if (bottom[0]->count != bottom[1]->count)
    return cg_error(CG_ERR_SHAPE, "inputs must have the same dimension (%zu vs %zu elements)", bottom[0]->count,
                    bottom[1]->count);
  s->num = bottom[0]->shape[0];
  return cg_scratch_floats(&s->buf, &s->buf_capacity, bottom[0]->count);
}

static int euclidean_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  loss_state *s = l->priv;
  size_t n = bottom[0]->count;
  const float *a = bottom[0]->data, *b = bottom[1]->data;
  double dot = 0;
  for (size_t i = 0; i < n; i++) {
    s->buf[i] = a[i] - b[i];
    dot += (double)s->buf[i] * s->buf[i];
  }
  top[0]->data[0] = (float)(dot / (s->num > 0 ? s->num : 1) / 2);
  return CG_OK;
}

static void euclidean_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  loss_state *s = l->priv;
  for (int i = 0; i < 2; i++) {
    if (!propagate_down[i]) continue;
    float alpha = (i == 0 ? 1.0f : -1.0f) * top[0]->diff[0] / (float)(s->num > 0 ? s->num : 1);
    float *d = bottom[i]->diff;
    for (size_t j = 0; j < bottom[i]->count; j++) d[j] = alpha * s->buf[j];
  }
}

const cg_layer_ops cg_layer_euclidean_loss = {
    .type = "EuclideanLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .is_loss = true,
    .setup = simple_setup,
    .reshape = euclidean_reshape,
    .forward = euclidean_forward,
    .backward = euclidean_backward,
    .destroy = loss_state_destroy,
};

/* ---- SigmoidCrossEntropyLoss: targets in [0, 1] (bottom 1), same count as the logits. */

static int sigmoid_ce_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  int rc = loss_state_new(l);
  if (rc) return rc;
  loss_state *s = l->priv;
  const Caffe__LossParameter *lp = l->param->loss_param;
  s->normalization = cg_loss_normalization(lp, CG_NORM_BATCH_SIZE);
  if (s->normalization < CG_NORM_FULL || s->normalization > CG_NORM_NONE)
    return cg_error(CG_ERR_INVALID, "unknown normalization mode %d", s->normalization);
  s->has_ignore_label = lp && lp->has_ignore_label;
  s->ignore_label = s->has_ignore_label ? lp->ignore_label : 0;
  return CG_OK;
}

static int sigmoid_ce_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  loss_state *s = l->priv;
  int rc = cg_loss_reshape_common(bottom, top);
  if (rc) return rc;
  if (bottom[0]->count != bottom[1]->count)
    return cg_error(CG_ERR_SHAPE, "inputs must have the same count (%zu vs %zu)", bottom[0]->count, bottom[1]->count);
  s->num = bottom[0]->shape[0];
  s->dim = s->num > 0 ? (int)(bottom[0]->count / (size_t)s->num) : 0;
  return cg_scratch_floats(&s->buf, &s->buf_capacity, bottom[0]->count);
}

static int sigmoid_ce_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  loss_state *s = l->priv;
  const float *x = bottom[0]->data, *t = bottom[1]->data;
  double loss = 0;
  long valid = 0;
  for (size_t i = 0; i < bottom[0]->count; i++) {
    s->buf[i] = 0.5f * tanhf(0.5f * x[i]) + 0.5f; /* the sigmoid, kept for backward */
    if (s->has_ignore_label && (int)t[i] == s->ignore_label) continue;
    /* -[t log(p) + (1-t) log(1-p)] without overflow: x (t - [x>=0]) - log(1 + exp(x - 2x[x>=0])) */
    float pos = x[i] >= 0 ? 1.0f : 0.0f;
    loss -= x[i] * (t[i] - pos) - log1pf(expf(x[i] - 2 * x[i] * pos));
    valid++;
  }
  s->normalizer = cg_loss_normalizer(s->normalization, s->num, s->dim, valid);
  top[0]->data[0] = (float)(loss / s->normalizer);
  return CG_OK;
}

static void sigmoid_ce_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  loss_state *s = l->priv;
  if (!propagate_down[0]) return;
  const float *t = bottom[1]->data;
  float *d = bottom[0]->diff, scale = top[0]->diff[0] / s->normalizer;
  for (size_t i = 0; i < bottom[0]->count; i++) {
    bool ignored = s->has_ignore_label && (int)t[i] == s->ignore_label;
    d[i] = ignored ? 0.0f : (s->buf[i] - t[i]) * scale;
  }
}

const cg_layer_ops cg_layer_sigmoid_cross_entropy_loss = {
    .type = "SigmoidCrossEntropyLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .is_loss = true,
    .no_backward_bottoms = 1u << 1,
    .setup = sigmoid_ce_setup,
    .reshape = sigmoid_ce_reshape,
    .forward = sigmoid_ce_forward,
    .backward = sigmoid_ce_backward,
    .destroy = loss_state_destroy,
};

/* ---- HingeLoss: per example i and class j, m = max(0, 1 + (j == label ? -x : x));
 * loss = sum(m) / num (L1) or sum(m^2) / num (L2). */

static int hinge_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  int rc = loss_state_new(l);
  if (rc) return rc;
  loss_state *s = l->priv;
  const Caffe__HingeLossParameter *hp = l->param->hinge_loss_param;
  int norm = hp ? (int)hp->norm : CAFFE__HINGE_LOSS_PARAMETER__NORM__L1;
  if (norm != CAFFE__HINGE_LOSS_PARAMETER__NORM__L1 && norm != CAFFE__HINGE_LOSS_PARAMETER__NORM__L2)
    return cg_error(CG_ERR_INVALID, "unknown hinge norm %d", norm);
  s->norm = norm == CAFFE__HINGE_LOSS_PARAMETER__NORM__L1 ? 1 : 2;
  return CG_OK;
}

/* Shared by HingeLoss and MultinomialLogisticLoss: bottom 0 is [num, dim...], bottom 1 one label per example. */
static int per_example_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  loss_state *s = l->priv;
  int rc = cg_loss_reshape_common(bottom, top);
  if (rc) return rc;
  s->num = bottom[0]->shape[0];
  if (bottom[1]->count != (size_t)s->num)
    return cg_error(CG_ERR_SHAPE, "needs one label per example (%d examples, %zu labels)", s->num, bottom[1]->count);
  size_t dim = s->num > 0 ? bottom[0]->count / (size_t)s->num : 0;
  if (dim > (1u << 30)) return cg_error(CG_ERR_SHAPE, "too many classes");
  s->dim = (int)dim;
  return cg_scratch_floats(&s->buf, &s->buf_capacity, bottom[0]->count);
}

static int hinge_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  loss_state *s = l->priv;
  const float *x = bottom[0]->data, *label = bottom[1]->data;
  float *m = s->buf;
  double loss = 0;
  for (int i = 0; i < s->num; i++) {
    int y = (int)label[i];
    int rc = check_label(y, s->dim);
    if (rc) return rc;
    for (int j = 0; j < s->dim; j++) {
      size_t k = (size_t)i * s->dim + j;
      float v = 1.0f + (j == y ? -x[k] : x[k]);
      m[k] = v > 0 ? v : 0.0f;
      loss += s->norm == 1 ? m[k] : (double)m[k] * m[k];
    }
  }
  top[0]->data[0] = (float)(loss / (s->num > 0 ? s->num : 1));
  return CG_OK;
}

static void hinge_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  loss_state *s = l->priv;
  if (!propagate_down[0]) return;
  const float *label = bottom[1]->data;
  float *d = bottom[0]->diff;
  float scale = top[0]->diff[0] / (float)(s->num > 0 ? s->num : 1);
  for (int i = 0; i < s->num; i++) {
    int y = (int)label[i];
    for (int j = 0; j < s->dim; j++) {
      size_t k = (size_t)i * s->dim + j;
      float g = j == y ? -s->buf[k] : s->buf[k]; /* the margin, signed as d m / d x */
      if (s->norm == 1)
        d[k] = (float)((g > 0) - (g < 0)) * scale;
      else
        d[k] = 2.0f * g * scale;
    }
  }
}

const cg_layer_ops cg_layer_hinge_loss = {
    .type = "HingeLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .is_loss = true,
    .no_backward_bottoms = 1u << 1,
    .setup = hinge_setup,
    .reshape = per_example_reshape,
    .forward = hinge_forward,
    .backward = hinge_backward,
    .destroy = loss_state_destroy,
};

/* ---- MultinomialLogisticLoss: bottom 0 holds probabilities; loss = -sum(log(max(p[label], 1e-20))) / num. */

static const float kLogThreshold = 1e-20f;

static int mlogistic_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  loss_state *s = l->priv;
  const float *p = bottom[0]->data, *label = bottom[1]->data;
  double loss = 0;
  for (int i = 0; i < s->num; i++) {
    int y = (int)label[i];
    int rc = check_label(y, s->dim);
    if (rc) return rc;
    float prob = p[(size_t)i * s->dim + y];
    loss -= log(prob > kLogThreshold ? prob : kLogThreshold);
  }
  top[0]->data[0] = (float)(loss / (s->num > 0 ? s->num : 1));
  return CG_OK;
}

static void mlogistic_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  loss_state *s = l->priv;
  if (!propagate_down[0]) return;
  const float *p = bottom[0]->data, *label = bottom[1]->data;
  float *d = bottom[0]->diff;
  float scale = -top[0]->diff[0] / (float)(s->num > 0 ? s->num : 1);
  memset(d, 0, bottom[0]->count * sizeof(float));
  for (int i = 0; i < s->num; i++) {
    int y = (int)label[i];
    if (y < 0 || y >= s->dim) continue;
    float prob = p[(size_t)i * s->dim + y];
    d[(size_t)i * s->dim + y] = scale / (prob > kLogThreshold ? prob : kLogThreshold);
  }
}

const cg_layer_ops cg_layer_multinomial_logistic_loss = {
    .type = "MultinomialLogisticLoss",
    .min_bottoms = 2,
    .max_bottoms = 2,
    .min_tops = 1,
    .max_tops = 1,
    .is_loss = true,
    .no_backward_bottoms = 1u << 1,
    .setup = simple_setup,
    .reshape = per_example_reshape,
    .forward = mlogistic_forward,
    .backward = mlogistic_backward,
    .destroy = loss_state_destroy,
};
