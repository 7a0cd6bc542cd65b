/* What the loss layers share (Caffe's LossLayer): the scalar top, the
 * first-dimension check, and loss normalisation. Internal to src/layers. */
#ifndef CG_LAYERS_LOSS_COMMON_H
#define CG_LAYERS_LOSS_COMMON_H

#include "core/layer.h"

enum {
  CG_NORM_FULL = CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__FULL,
  CG_NORM_VALID = CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID,
  CG_NORM_BATCH_SIZE = CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE,
  CG_NORM_NONE = CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__NONE,
};

/* Caffe's LossLayer::Reshape: same first dimension, scalar top. */
static inline int cg_loss_reshape_common(cg_blob *const *bottom, cg_blob *const *top) {
  if (bottom[0]->num_axes < 1 || bottom[1]->num_axes < 1)
    return cg_error(CG_ERR_SHAPE, "loss inputs need at least one axis");
  if (bottom[0]->shape[0] != bottom[1]->shape[0])
    return cg_error(CG_ERR_SHAPE, "the data and label should have the same first dimension (%d vs %d)",
                    bottom[0]->shape[0], bottom[1]->shape[0]);
  return cg_blob_reshape(top[0], 0, NULL);
}

/* The normalisation mode: `normalization` when given, else the deprecated `normalize`
 * (true = VALID, false = BATCH_SIZE), else `fallback`. Caffe's SoftmaxWithLoss falls
 * back to the proto default (VALID), SigmoidCrossEntropyLoss to BATCH_SIZE. */
static inline int cg_loss_normalization(const Caffe__LossParameter *p, int fallback) {
  if (!p) return fallback;
  if (p->has_normalization) return p->normalization;
  if (p->has_normalize) return p->normalize ? CG_NORM_VALID : CG_NORM_BATCH_SIZE;
  return fallback;
}

/* Caffe's get_normalizer: at least 1, so a batch with every label ignored gives 0, not NaN.
 * valid_count < 0 means "not counted" (VALID then behaves as FULL). */
static inline float cg_loss_normalizer(int mode, long outer, long inner, long valid_count) {
  double n;
  switch (mode) {
  case CG_NORM_FULL: n = (double)outer * inner; break;
  case CG_NORM_VALID: n = valid_count < 0 ? (double)outer * inner : (double)valid_count; break;
  case CG_NORM_BATCH_SIZE: n = (double)outer; break;
  default: n = 1; break;
  }
  return n < 1 ? 1.0f : (float)n;
}

#endif
