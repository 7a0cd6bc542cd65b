/* Element-wise activation layers without learned parameters (Caffe's NeuronLayer
 * family): ReLU, ELU, Sigmoid, TanH, AbsVal, Power, Exp, Log, BNLL, Threshold and
 * Swish. All work in place; those whose gradient needs the input keep a copy of it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "layers/scratch.h"

enum { PAR_MIN = 1 << 15 }; /* below this many elements, threads cost more than they save */

/* max and min as C++'s std::max/std::min, which Caffe uses: a NaN input comes out NaN. */
static inline float max0(float x) { return x < 0 ? 0.0f : x; }
static inline float min0(float x) { return 0 < x ? 0.0f : x; }

typedef struct neuron_priv {
  float a, b, c, d; /* the layer's constants; meaning per type (see each setup) */
  bool needs_input; /* backward reads the input, so an in-place forward saves it */
  float *saved;     /* the input, saved by an in-place forward */
  size_t saved_cap;
  float *aux; /* Swish: sigmoid(beta x) */
  size_t aux_cap;
} neuron_priv;

static neuron_priv *neuron_new(cg_layer *l) {
  neuron_priv *p = calloc(1, sizeof *p);
  if (!p) cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = p;
  return p;
}

static void neuron_destroy(cg_layer *l) {
  neuron_priv *p = l->priv;
  if (!p) return;
  free(p->saved);
  free(p->aux);
  free(p);
  l->priv = NULL;
}

static int neuron_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  neuron_priv *p = l->priv;
  if (top[0] != bottom[0]) {
    int rc = cg_blob_reshape_like(top[0], bottom[0]);
    if (rc) return rc;
  } else if (p->needs_input) {
    int rc = cg_scratch_floats(&p->saved, &p->saved_cap, bottom[0]->count);
    if (rc) return rc;
  }
  return CG_OK;
}

/* Called first thing in forward: an in-place layer keeps the input its backward needs. */
static void save_input(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  neuron_priv *p = l->priv;
  if (p->needs_input && top[0] == bottom[0]) memcpy(p->saved, bottom[0]->data, bottom[0]->count * sizeof(float));
}

/* The forward input as backward sees it. */
static const float *backward_input(const cg_layer *l, cg_blob *const *top, cg_blob *const *bottom) {
  const neuron_priv *p = l->priv;
  return (p->needs_input && top[0] == bottom[0]) ? p->saved : bottom[0]->data;
}

/* ---- ReLU: y = max(x, 0) + slope * min(x, 0) ---- */

static int relu_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  neuron_priv *p = neuron_new(l);
  if (!p) return CG_ERR_NOMEM;
  p->a = l->param->relu_param ? l->param->relu_param->negative_slope : 0.0f;
  /* In place, top > 0 tells x > 0 apart only for a slope >= 0. */
  p->needs_input = p->a < 0;
  return CG_OK;
}

static int relu_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const neuron_priv *p = l->priv;
  save_input(l, bottom, top);
  const float *x = bottom[0]->data;
  float *y = top[0]->data, slope = p->a;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) y[i] = max0(x[i]) + slope * min0(x[i]);
  return CG_OK;
}

static void relu_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  const neuron_priv *p = l->priv;
  const float *x = backward_input(l, top, bottom), *dy = top[0]->diff;
  float *dx = bottom[0]->diff, slope = p->a;
  size_t n = bottom[0]->count;
  /* A select, not a multiply by 0 or 1: with CAFFEGRID_DENORMALS=keep gradients this
   * deep are often denormal, and arithmetic on them costs ~100 cycles (CaffeNet's
   * relu1: 40 ms against 4); the select is also less work when they are flushed. */
  if (slope == 0.0f) {
    /* dy read whatever the sign, so that the select vectorises without AVX2's masked loads */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
      const float g = dy[i];
      dx[i] = x[i] > 0 ? g : 0.0f;
    }
    return;
  }
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0 ? dy[i] : dy[i] * slope;
}

/* ---- ELU: y = x for x > 0, alpha (e^x - 1) otherwise ---- */

static int elu_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  neuron_priv *p = neuron_new(l);
  if (!p) return CG_ERR_NOMEM;
  p->a = l->param->elu_param ? l->param->elu_param->alpha : 1.0f;
  p->needs_input = p->a < 0; /* as ReLU: in place, the sign of y stands for the sign of x when alpha >= 0 */
  return CG_OK;
}

static int elu_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const neuron_priv *p = l->priv;
  save_input(l, bottom, top);
  const float *x = bottom[0]->data;
  float *y = top[0]->data, alpha = p->a;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) y[i] = max0(x[i]) + alpha * (expf(min0(x[i])) - 1.0f);
  return CG_OK;
}

static void elu_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  const neuron_priv *p = l->priv;
  const float *x = backward_input(l, top, bottom), *y = top[0]->data, *dy = top[0]->diff;
  float *dx = bottom[0]->diff, alpha = p->a;
  size_t n = bottom[0]->count;
  /* for x <= 0, dy/dx = alpha e^x = y + alpha */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (x[i] > 0 ? 1.0f : alpha + y[i]);
}

/* ---- Sigmoid and TanH: the gradient comes from the output ---- */

/* Caffe's form, which its double constants make a double computation */
static inline float sigmoid(float x) { return (float)(0.5 * tanh(0.5 * (double)x) + 0.5); }

static int plain_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  return neuron_new(l) ? CG_OK : CG_ERR_NOMEM;
}

static int sigmoid_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)l;
  const float *x = bottom[0]->data;
  float *y = top[0]->data;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) y[i] = sigmoid(x[i]);
  return CG_OK;
}

static void sigmoid_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l;
  if (!propagate_down[0]) return;
  const float *y = top[0]->data, *dy = top[0]->diff;
  float *dx = bottom[0]->diff;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

static int tanh_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)l;
  const float *x = bottom[0]->data;
  float *y = top[0]->data;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
  return CG_OK;
}

static void tanh_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l;
  if (!propagate_down[0]) return;
  const float *y = top[0]->data, *dy = top[0]->diff;
  float *dx = bottom[0]->diff;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* ---- AbsVal: y = |x|, dx = sign(x) dy ---- */

static int absval_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  neuron_priv *p = neuron_new(l);
  if (!p) return CG_ERR_NOMEM;
  p->needs_input = true;
  return CG_OK;
}

static int absval_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  save_input(l, bottom, top);
  const float *x = bottom[0]->data;
  float *y = top[0]->data;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
  return CG_OK;
}

static void absval_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  const float *x = backward_input(l, top, bottom), *dy = top[0]->diff;
  float *dx = bottom[0]->diff;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) dx[i] = (float)((x[i] > 0) - (x[i] < 0)) * dy[i];
}

/* ---- Power: y = (shift + scale x)^power; a = power, b = scale, c = shift, d = power * scale ---- */

static int power_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  neuron_priv *p = neuron_new(l);
  if (!p) return CG_ERR_NOMEM;
  const Caffe__PowerParameter *pp = l->param->power_param;
  p->a = pp ? pp->power : 1.0f;
  p->b = pp ? pp->scale : 1.0f;
  p->c = pp ? pp->shift : 0.0f;
  p->d = p->a * p->b;
  p->needs_input = !(p->d == 0.0f || p->a == 1.0f);
  return CG_OK;
}

static int power_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const neuron_priv *p = l->priv;
  save_input(l, bottom, top);
  const float *x = bottom[0]->data;
  float *y = top[0]->data, power = p->a, scale = p->b, shift = p->c;
  size_t n = bottom[0]->count;
  if (p->d == 0.0f) { /* the input does not matter: scale or power is 0 */
    float value = power == 0.0f ? 1.0f : powf(shift, power);
    for (size_t i = 0; i < n; i++) y[i] = value;
    return CG_OK;
  }
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    if (scale != 1.0f) v *= scale;
    if (shift != 0.0f) v += shift;
    y[i] = power != 1.0f ? powf(v, power) : v;
  }
  return CG_OK;
}

static void power_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  const neuron_priv *p = l->priv;
  const float *dy = top[0]->diff, *y = top[0]->data;
  float *dx = bottom[0]->diff, power = p->a, scale = p->b, shift = p->c, diff_scale = p->d;
  size_t n = bottom[0]->count;
  if (diff_scale == 0.0f) {
    memset(dx, 0, n * sizeof(float));
    return;
  }
  if (power == 1.0f) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * diff_scale;
    return;
  }
  const float *x = backward_input(l, top, bottom);
  if (power == 2.0f) { /* dy/dx = 2 scale (shift + scale x) */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
      float g = diff_scale * scale * x[i];
      if (shift != 0.0f) g += diff_scale * shift;
      dx[i] = dy[i] * g;
    }
  } else if (shift == 0.0f) { /* dy/dx = power y / x */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (y[i] / x[i] * power);
  } else { /* dy/dx = power scale y / (shift + scale x) */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
      float v = x[i];
      if (scale != 1.0f) v *= scale;
      v += shift;
      float g = y[i] / v;
      if (diff_scale != 1.0f) g *= diff_scale;
      dx[i] = dy[i] * g;
    }
  }
}

/* ---- Exp: y = base^(shift + scale x); a = inner scale (ln(base) scale), b = outer scale (base^shift) ---- */

static int exp_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__ExpParameter *ep = l->param->exp_param;
  float base = ep ? ep->base : -1.0f, scale = ep ? ep->scale : 1.0f, shift = ep ? ep->shift : 0.0f;
  CG_LAYER_CHECK(base == -1.0f || base > 0, CG_ERR_INVALID,
                 "exp_param.base must be strictly positive (or -1 for e), got %g", (double)base);
  neuron_priv *p = neuron_new(l);
  if (!p) return CG_ERR_NOMEM;
  float log_base = base == -1.0f ? 1.0f : logf(base);
  p->a = log_base * scale;
  p->b = shift == 0.0f ? 1.0f : (base != -1.0f ? powf(base, shift) : expf(shift));
  return CG_OK;
}

static int exp_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const neuron_priv *p = l->priv;
  const float *x = bottom[0]->data;
  float *y = top[0]->data, inner = p->a, outer = p->b;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float v = expf(inner == 1.0f ? x[i] : inner * x[i]);
    y[i] = outer != 1.0f ? v * outer : v;
  }
  return CG_OK;
}

static void exp_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  const neuron_priv *p = l->priv;
  const float *y = top[0]->data, *dy = top[0]->diff;
  float *dx = bottom[0]->diff, inner = p->a;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float g = y[i] * dy[i];
    dx[i] = inner != 1.0f ? g * inner : g;
  }
}

/* ---- Log: y = log_base(shift + scale x); a = scale, b = shift, c = 1/ln(base), d = scale / ln(base) ---- */

static int log_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__LogParameter *lp = l->param->log_param;
  float base = lp ? lp->base : -1.0f;
  CG_LAYER_CHECK(base == -1.0f || base > 0, CG_ERR_INVALID,
                 "log_param.base must be strictly positive (or -1 for e), got %g", (double)base);
  neuron_priv *p = neuron_new(l);
  if (!p) return CG_ERR_NOMEM;
  p->a = lp ? lp->scale : 1.0f;
  p->b = lp ? lp->shift : 0.0f;
  p->c = base == -1.0f ? 1.0f : 1.0f / logf(base);
  p->d = p->a * p->c;
  p->needs_input = true;
  return CG_OK;
}

static int log_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const neuron_priv *p = l->priv;
  save_input(l, bottom, top);
  const float *x = bottom[0]->data;
  float *y = top[0]->data, scale = p->a, shift = p->b, base_scale = p->c;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float v = logf(scale * x[i] + shift);
    y[i] = base_scale != 1.0f ? v * base_scale : v;
  }
  return CG_OK;
}

static void log_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  const neuron_priv *p = l->priv;
  const float *x = backward_input(l, top, bottom), *dy = top[0]->diff;
  float *dx = bottom[0]->diff, scale = p->a, shift = p->b, num_scale = p->d;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float g = 1.0f / (scale * x[i] + shift);
    if (num_scale != 1.0f) g *= num_scale;
    dx[i] = dy[i] * g;
  }
}

/* ---- BNLL: y = log(1 + e^x), written to stay finite for large |x| ---- */

enum { BNLL_THRESHOLD = 50 };

static int bnll_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) { return absval_setup(l, bottom, top); }

static int bnll_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  save_input(l, bottom, top);
  const float *x = bottom[0]->data;
  float *y = top[0]->data;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] > 0 ? (float)(x[i] + log(1.0 + expf(-x[i]))) : (float)log(1.0 + expf(x[i]));
  return CG_OK;
}

static void bnll_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  const float *x = backward_input(l, top, bottom), *dy = top[0]->diff;
  float *dx = bottom[0]->diff;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float e = expf((float)BNLL_THRESHOLD < x[i] ? (float)BNLL_THRESHOLD : x[i]);
    dx[i] = (float)(dy[i] * e / (e + 1.0));
  }
}

/* ---- Threshold: y = x > t ? 1 : 0. Caffe defines no gradient; bottom diff is left zero. ---- */

static int threshold_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  neuron_priv *p = neuron_new(l);
  if (!p) return CG_ERR_NOMEM;
  p->a = l->param->threshold_param ? l->param->threshold_param->threshold : 0.0f;
  return CG_OK;
}

static int threshold_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const neuron_priv *p = l->priv;
  const float *x = bottom[0]->data;
  float *y = top[0]->data, t = p->a;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) y[i] = x[i] > t ? 1.0f : 0.0f;
  return CG_OK;
}

static void threshold_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top;
  if (propagate_down[0]) memset(bottom[0]->diff, 0, bottom[0]->count * sizeof(float));
}

/* ---- Swish: y = x sigmoid(beta x); the gradient needs only y and the saved sigmoid ---- */

static int swish_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  neuron_priv *p = neuron_new(l);
  if (!p) return CG_ERR_NOMEM;
  p->a = l->param->swish_param ? l->param->swish_param->beta : 1.0f;
  return CG_OK;
}

static int swish_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  neuron_priv *p = l->priv;
  int rc = neuron_reshape(l, bottom, top);
  return rc ? rc : cg_scratch_floats(&p->aux, &p->aux_cap, bottom[0]->count);
}

static int swish_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  const neuron_priv *p = l->priv;
  const float *x = bottom[0]->data;
  float *y = top[0]->data, *s = p->aux, beta = p->a;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    s[i] = sigmoid(x[i] * beta);
    y[i] = x[i] * s[i];
  }
  return CG_OK;
}

static void swish_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  if (!propagate_down[0]) return;
  const neuron_priv *p = l->priv;
  const float *y = top[0]->data, *dy = top[0]->diff, *s = p->aux;
  float *dx = bottom[0]->diff, beta = p->a;
  size_t n = bottom[0]->count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (beta * y[i] + s[i] * (1.0f - beta * y[i]));
}

#define NEURON_LAYER(sym, name, prefix, setup_fn, reshape_fn) \
  const cg_layer_ops sym = {.type = name,                     \
                            .min_bottoms = 1,                 \
                            .max_bottoms = 1,                 \
                            .min_tops = 1,                    \
                            .max_tops = 1,                    \
                            .setup = setup_fn,                \
                            .reshape = reshape_fn,            \
                            .forward = prefix##_forward,      \
                            .backward = prefix##_backward,    \
                            .destroy = neuron_destroy};

NEURON_LAYER(cg_layer_relu, "ReLU", relu, relu_setup, neuron_reshape)
NEURON_LAYER(cg_layer_elu, "ELU", elu, elu_setup, neuron_reshape)
NEURON_LAYER(cg_layer_sigmoid, "Sigmoid", sigmoid, plain_setup, neuron_reshape)
NEURON_LAYER(cg_layer_tanh, "TanH", tanh, plain_setup, neuron_reshape)
NEURON_LAYER(cg_layer_absval, "AbsVal", absval, absval_setup, neuron_reshape)
NEURON_LAYER(cg_layer_power, "Power", power, power_setup, neuron_reshape)
NEURON_LAYER(cg_layer_exp, "Exp", exp, exp_setup, neuron_reshape)
NEURON_LAYER(cg_layer_log, "Log", log, log_setup, neuron_reshape)
NEURON_LAYER(cg_layer_bnll, "BNLL", bnll, bnll_setup, neuron_reshape)
NEURON_LAYER(cg_layer_threshold, "Threshold", threshold, threshold_setup, neuron_reshape)
NEURON_LAYER(cg_layer_swish, "Swish", swish, swish_setup, swish_reshape)
