/* InnerProduct (Caffe's InnerProductLayer): top[M, N] = bottom[M, K] * W^T + b,
 * with M = count(0, axis), K = count(axis); W is [N, K], or [K, N] with transpose. */
#include <stdlib.h>

#include "core/layer.h"
#include "layers/scratch.h"
#include "math/backend.h"
#include "math/math.h"

static const Caffe__InnerProductParameter ip_defaults = CAFFE__INNER_PRODUCT_PARAMETER__INIT;

typedef struct ip_state {
  int axis;       /* canonical */
  int num_output; /* N */
  int K, M;
  bool bias_term, transpose;
  float *flipped; /* forward with more outputs than examples: top^T [N, M] */
  size_t flipped_capacity;
} ip_state;

static int ip_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  const Caffe__InnerProductParameter *p =
      l->param->inner_product_param ? l->param->inner_product_param : &ip_defaults;
  if (!p->has_num_output || p->num_output == 0)
    return cg_error(CG_ERR_INVALID, "num_output must be given and positive");
  if (p->num_output > (1u << 30))
    return cg_error(CG_ERR_INVALID, "num_output %u is too large (at most %u)", p->num_output, 1u << 30);
  int axis = cg_blob_canonical_axis(bottom[0], p->axis);
  if (axis < 0)
    return cg_error(CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", p->axis, bottom[0]->num_axes);
  size_t K = cg_blob_count_from(bottom[0], axis);
  if (K == 0 || K > (1u << 30)) return cg_error(CG_ERR_SHAPE, "input size per example (%zu) is unusable", K);
  ip_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  s->axis = axis;
  s->num_output = (int)p->num_output;
  s->K = (int)K;
  s->bias_term = p->bias_term;
  s->transpose = p->transpose;
  l->priv = s;
  cg_filler weight_filler, bias_filler;
  int rc = cg_filler_from_param(p->weight_filler, &weight_filler);
  if (!rc) rc = cg_filler_from_param(p->bias_filler, &bias_filler);
  if (rc) return rc;
  int wshape[2] = {s->transpose ? s->K : s->num_output, s->transpose ? s->num_output : s->K};
  if (!cg_layer_add_param(l, 2, wshape, weight_filler)) return CG_ERR_SHAPE;
  if (s->bias_term && !cg_layer_add_param(l, 1, &s->num_output, bias_filler)) return CG_ERR_SHAPE;
  return CG_OK;
}

/* More outputs than examples (CaffeNet's fc6: 4096 for 32 images): top^T = W * bottom^T
 * with the weights as the gemm's left operand measured faster (fc6 23.7 -> 13.8 ms,
 * LeNet's ip1 0.22 -> 0.18 ms); the other way round when the batch is the larger
 * side (CIFAR-10 quick's ip1: 0.065 against 0.095 ms). */
static bool weights_on_left(const ip_state *s) { return !s->transpose && s->num_output > s->M; }

static int ip_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  ip_state *s = l->priv;
  const cg_blob *b = bottom[0];
  if (s->axis >= b->num_axes)
    return cg_error(CG_ERR_SHAPE, "bottom has %d axes; axis %d needs more", b->num_axes, s->axis);
  size_t K = cg_blob_count_from(b, s->axis);
  if (K != (size_t)s->K)
    return cg_error(CG_ERR_SHAPE, "input size incompatible with inner product parameters (%zu per example, expected %d)",
                    K, s->K);
  size_t M = cg_blob_count_range(b, 0, s->axis);
  if (M > (1u << 30)) return cg_error(CG_ERR_SHAPE, "too many examples (%zu)", M);
  s->M = (int)M;
  if (weights_on_left(s)) {
    int rc = cg_scratch_floats(&s->flipped, &s->flipped_capacity, M * (size_t)s->num_output);
    if (rc) return rc;
  }
  int shape[CG_BLOB_MAX_AXES];
  for (int i = 0; i < s->axis; i++) shape[i] = b->shape[i];
  shape[s->axis] = s->num_output;
  return cg_blob_reshape(top[0], s->axis + 1, shape);
}

static int ip_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  ip_state *s = l->priv;
  int M = s->M, N = s->num_output, K = s->K;
  if (M == 0) return CG_OK;
  float *out = top[0]->data;
  const float *bias = s->bias_term ? l->params[1]->data : NULL;
  if (weights_on_left(s)) {
    cg_backend_gemm(l->backend, false, true, N, M, K, 1.0f, l->params[0]->data, bottom[0]->data, 0.0f, s->flipped);
    enum { TILE = 64 }; /* a tile of top^T's rows stays in cache while its columns are read */
    for (int n0 = 0; n0 < N; n0 += TILE) {
      int n1 = N - n0 < TILE ? N : n0 + TILE;
      for (int m = 0; m < M; m++)
        for (int n = n0; n < n1; n++) out[(size_t)m * N + n] = s->flipped[(size_t)n * M + m] + (bias ? bias[n] : 0.0f);
    }
    return CG_OK;
  }
  cg_backend_gemm(l->backend, false, !s->transpose, M, N, K, 1.0f, bottom[0]->data, l->params[0]->data, 0.0f, out);
  if (bias) {
    for (int m = 0; m < M; m++) {
      float *row = out + (size_t)m * N;
      for (int n = 0; n < N; n++) row[n] += bias[n];
    }
  }
  return CG_OK;
}

static void ip_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  ip_state *s = l->priv;
  int M = s->M, N = s->num_output, K = s->K;
  if (M == 0) return;
  const float *top_diff = top[0]->diff, *in = bottom[0]->data, *weight = l->params[0]->data;
  if (s->transpose)
    cg_backend_gemm(l->backend, true, false, K, N, M, 1.0f, in, top_diff, 1.0f, l->params[0]->diff); /* [K,N] += in^T top_diff */
  else
    cg_backend_gemm(l->backend, true, false, N, K, M, 1.0f, top_diff, in, 1.0f, l->params[0]->diff); /* [N,K] += top_diff^T in */
  if (s->bias_term) {
    float *bias_diff = l->params[1]->diff;
    for (int m = 0; m < M; m++) { /* fixed order, row by row */
      const float *row = top_diff + (size_t)m * N;
      for (int n = 0; n < N; n++) bias_diff[n] += row[n];
    }
  }
  if (propagate_down[0]) /* bottom_diff[M,K] = top_diff[M,N] * W[N,K] (or * W^T when W is [K,N]) */
    cg_backend_gemm(l->backend, false, s->transpose, M, K, N, 1.0f, top_diff, weight, 0.0f, bottom[0]->diff);
}

static void ip_destroy(cg_layer *l) {
  ip_state *s = l->priv;
  if (s) free(s->flipped);
  free(s);
  l->priv = NULL;
}

const cg_layer_ops cg_layer_inner_product = {
    .type = "InnerProduct",
    .min_bottoms = 1,
    .max_bottoms = 1,
    .min_tops = 1,
    .max_tops = 1,
    .setup = ip_setup,
    .reshape = ip_reshape,
    .forward = ip_forward,
    .backward = ip_backward,
    .destroy = ip_destroy,
};
