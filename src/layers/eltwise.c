/* Eltwise (Caffe's EltwiseLayer): element-wise PROD, SUM (with per-bottom
 * coefficients) or MAX (remembering which bottom won) over two or more
 * same-shaped bottoms. */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "layers/scratch.h"

enum { PAR_MIN = 1 << 15 };

typedef struct eltwise_priv {
  Caffe__EltwiseParameter__EltwiseOp op;
  float *coeff; /* [num_bottoms], SUM only */
  bool stable_prod_grad;
  int *argmax; /* MAX: which bottom gave each output */
  size_t argmax_cap;
} eltwise_priv;

static void eltwise_destroy(cg_layer *l) {
  eltwise_priv *p = l->priv;
  if (!p) return;
  free(p->coeff);
  free(p->argmax);
  free(p);
  l->priv = NULL;
}

static int eltwise_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  static const Caffe__EltwiseParameter defaults = CAFFE__ELTWISE_PARAMETER__INIT;
  const Caffe__EltwiseParameter *ep = l->param->eltwise_param ? l->param->eltwise_param : &defaults;
  CG_LAYER_CHECK(ep->n_coeff == 0 || ep->n_coeff == (size_t)l->num_bottoms, CG_ERR_INVALID,
                 "eltwise_param takes one coeff per bottom (%d), got %zu", l->num_bottoms, ep->n_coeff);
  CG_LAYER_CHECK(ep->operation == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM || ep->n_coeff == 0, CG_ERR_INVALID,
                 "eltwise_param takes coefficients only for SUM");
  CG_LAYER_CHECK(ep->operation == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM ||
                     ep->operation == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD ||
                     ep->operation == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX,
                 CG_ERR_INVALID, "unknown eltwise operation %d", (int)ep->operation);
  eltwise_priv *p = calloc(1, sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = p;
  p->op = ep->operation;
  p->stable_prod_grad = ep->stable_prod_grad;
  p->coeff = malloc((size_t)l->num_bottoms * sizeof *p->coeff);
  if (!p->coeff) return cg_error(CG_ERR_NOMEM, "out of memory");
  for (int i = 0; i < l->num_bottoms; i++) p->coeff[i] = ep->n_coeff ? ep->coeff[i] : 1.0f;
  return CG_OK;
}

static int eltwise_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  eltwise_priv *p = l->priv;
  for (int i = 1; i < l->num_bottoms; i++) {
    if (!cg_blob_same_shape(bottom[i], bottom[0])) {
      char a[128], b[128];
      return cg_error(CG_ERR_SHAPE, "bottom %d has shape %s, bottom 0 has %s; they must match", i,
                      cg_blob_shape_string(bottom[i], a, sizeof a), cg_blob_shape_string(bottom[0], b, sizeof b));
    }
  }
  int rc = cg_blob_reshape_like(top[0], bottom[0]);
  if (rc) return rc;
  if (p->op == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX)
    return cg_scratch_ints(&p->argmax, &p->argmax_cap, bottom[0]->count);
  return CG_OK;
}

static int eltwise_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  eltwise_priv *p = l->priv;
  size_t n = top[0]->count;
  float *y = top[0]->data;
  int nb = l->num_bottoms;
  switch (p->op) {
    case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD: {
      const float *a = bottom[0]->data, *b = bottom[1]->data;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
      for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
      for (int k = 2; k < nb; k++) {
        const float *x = bottom[k]->data;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) y[i] *= x[i];
      }
      break;
    }
    case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM: {
      const float *coeff = p->coeff;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
      for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (int k = 0; k < nb; k++) s += coeff[k] * bottom[k]->data[i];
        y[i] = s;
      }
      break;
    }
    case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX: {
      int *arg = p->argmax;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
      for (size_t i = 0; i < n; i++) {
        /* ties between the first two go to bottom 1; later bottoms must be strictly larger */
        float a = bottom[0]->data[i], b = bottom[1]->data[i];
        float best = a > b ? a : b;
        int which = a > b ? 0 : 1;
        for (int k = 2; k < nb; k++) {
          float v = bottom[k]->data[i];
          if (v > best) {
            best = v;
            which = k;
          }
        }
        y[i] = best;
        arg[i] = which;
      }
      break;
    }
    default:
      return cg_error(CG_ERR_INVALID, "unknown eltwise operation %d", (int)p->op);
  }
  return CG_OK;
}

static void eltwise_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  eltwise_priv *p = l->priv;
  size_t n = top[0]->count;
  const float *y = top[0]->data, *dy = top[0]->diff;
  int nb = l->num_bottoms;
  for (int k = 0; k < nb; k++) {
    if (!propagate_down[k]) continue;
    float *dx = bottom[k]->diff;
    const float *x = bottom[k]->data;
    switch (p->op) {
      case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD:
        if (p->stable_prod_grad) { /* the product of the other bottoms */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
          for (size_t i = 0; i < n; i++) {
            float g = 0;
            bool first = true;
            for (int j = 0; j < nb; j++) {
              if (j == k) continue;
              g = first ? bottom[j]->data[i] : g * bottom[j]->data[i];
              first = false;
            }
            dx[i] = g * dy[i];
          }
        } else { /* top / this bottom */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
          for (size_t i = 0; i < n; i++) dx[i] = y[i] / x[i] * dy[i];
        }
        break;
      case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM: {
        float c = p->coeff[k];
        if (c == 1.0f) {
          memcpy(dx, dy, n * sizeof(float));
        } else {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
          for (size_t i = 0; i < n; i++) dx[i] = c * dy[i];
        }
        break;
      }
      case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX: {
        const int *arg = p->argmax;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) dx[i] = arg[i] == k ? dy[i] : 0.0f;
        break;
      }
      default:
        break;
    }
  }
}

const cg_layer_ops cg_layer_eltwise = {.type = "Eltwise",
                                       .min_bottoms = 2,
                                       .max_bottoms = -1,
                                       .min_tops = 1,
                                       .max_tops = 1,
                                       .setup = eltwise_setup,
                                       .reshape = eltwise_reshape,
                                       .forward = eltwise_forward,
                                       .backward = eltwise_backward,
                                       .destroy = eltwise_destroy};
