/* The gradient checker behind test_gradients: builds one layer from text, fills
 * its bottoms, and compares backward with central differences. */
#include "gradient_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "caffegrid/rng.h"
#include "proto/text_format.h"

enum { MAX_TOPS = 4 };

static int parse_bottom(const char *spec, int *shape, int *num_axes, char *fill, size_t fill_size) {
  *num_axes = 0;
  const char *p = spec;
  while (*p && *p != ':') {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) break;
    shape[(*num_axes)++] = (int)v;
    p = end;
    while (*p == ' ') p++;
  }
  snprintf(fill, fill_size, "%s", *p == ':' ? p + 1 : "gaussian");
  return 0;
}

static void fill_bottom(cg_blob *b, const char *fill, cg_rng *rng) {
  if (strncmp(fill, "labels=", 7) == 0) {
    int k = atoi(fill + 7);
    for (size_t i = 0; i < b->count; i++) b->data[i] = (float)cg_rng_below(rng, (uint64_t)k);
  } else if (strcmp(fill, "positive") == 0) {
    for (size_t i = 0; i < b->count; i++) b->data[i] = cg_rng_uniform(rng, 0.1f, 1.1f);
  } else if (strcmp(fill, "uniform") == 0) {
    for (size_t i = 0; i < b->count; i++) b->data[i] = cg_rng_uniform(rng, -1, 1);
  } else if (strcmp(fill, "binary") == 0) {
    for (size_t i = 0; i < b->count; i++) b->data[i] = (float)cg_rng_below(rng, 2);
  } else if (strcmp(fill, "distinct") == 0) {
    /* a shuffled ramp: no two values within 0.05, so max ops have no ties */
    for (size_t i = 0; i < b->count; i++) b->data[i] = (float)i * 0.1f - (float)b->count * 0.05f;
    for (size_t i = b->count; i > 1; i--) {
      size_t j = cg_rng_below(rng, i);
      float t = b->data[i - 1];
      b->data[i - 1] = b->data[j];
      b->data[j] = t;
    }
  } else {
    for (size_t i = 0; i < b->count; i++) b->data[i] = cg_rng_gaussian(rng, 0, 1);
  }
}

/* sum(w * top) over all tops, with the layer's RNG rewound so stochastic layers repeat. */
static double objective(cg_layer *l, cg_blob **bottom, cg_blob **top, int nt, float **weights, cg_rng saved) {
  l->rng = saved;
  if (l->ops->forward(l, bottom, top)) return NAN;
  double s = 0;
  for (int t = 0; t < nt; t++)
    for (size_t i = 0; i < top[t]->count; i++) s += (double)weights[t][i] * top[t]->data[i];
  return s;
}

static int compare(const char *what, int index, float *x, size_t n, const float *analytic, const grad_case *c,
                   cg_layer *l, cg_blob **bottom, cg_blob **top, int nt, float **weights, cg_rng saved,
                   int *checked) {
  float step = c->step > 0 ? c->step : 1e-2f, threshold = c->threshold > 0 ? c->threshold : 1e-3f;
  int failures = 0;
  for (size_t i = 0; i < n; i++) {
    float orig = x[i];
    if (c->check_kink && fabsf(orig - c->kink) < c->kink_range) continue;
    x[i] = orig + step;
    double plus = objective(l, bottom, top, nt, weights, saved);
    x[i] = orig - step;
    double minus = objective(l, bottom, top, nt, weights, saved);
    x[i] = orig;
    double numeric = (plus - minus) / (2.0 * step);
    double a = analytic[i];
    double scale = fmax(fmax(fabs(a), fabs(numeric)), 1.0);
    (*checked)++;
    if (!(fabs(a - numeric) <= threshold * scale)) {
      if (failures < 5)
        fprintf(stderr, "  %s: %s %d element %zu: analytic %.6g numeric %.6g\n", c->layer, what, index, i, a,
                numeric);
      failures++;
    }
  }
  return failures;
}

int grad_check_run(const grad_case *c, int *elements_checked) {
  ProtobufCMessage *msg = NULL;
  if (cg_text_parse(&caffe__layer_parameter__descriptor, c->layer, strlen(c->layer), "case", &msg)) {
    fprintf(stderr, "  cannot parse case '%s': %s\n", c->layer, cg_error_message());
    return -1;
  }
  Caffe__LayerParameter *param = (Caffe__LayerParameter *)msg;
  if (!param->name) param->name = strdup("under_test");
  cg_rng rng;
  cg_rng_seed(&rng, 1701);
  cg_blob *bottom[4] = {0}, *top[MAX_TOPS] = {0};
  int nb = 0, nt = c->num_tops ? c->num_tops : 1, failures = -1;
  char fills[4][32];
  for (; nb < 4 && c->bottoms[nb]; nb++) {
    int shape[CG_BLOB_MAX_AXES], na;
    parse_bottom(c->bottoms[nb], shape, &na, fills[nb], sizeof fills[nb]);
    bottom[nb] = cg_blob_create("bottom");
    cg_blob_reshape(bottom[nb], na, shape);
    fill_bottom(bottom[nb], fills[nb], &rng);
  }
  for (int t = 0; t < nt; t++) top[t] = cg_blob_create("top");
  cg_layer layer;
  float *weights[MAX_TOPS] = {0};
  if (cg_layer_instantiate(&layer, param, c->phase ? CG_TEST : CG_TRAIN, bottom, nb, top, nt, 1234)) {
    fprintf(stderr, "  cannot build '%s': %s\n", c->layer, cg_error_message());
    goto done;
  }
  cg_rng saved = layer.rng;
  if (layer.ops->forward(&layer, bottom, top)) {
    fprintf(stderr, "  forward failed '%s': %s\n", c->layer, cg_error_message());
    goto done;
  }
  for (int t = 0; t < nt; t++) {
    weights[t] = malloc((top[t]->count ? top[t]->count : 1) * sizeof(float));
    for (size_t i = 0; i < top[t]->count; i++) weights[t][i] = cg_rng_uniform(&rng, 0.5f, 1.5f);
  }
  /* Analytic gradients: top diff = w, params' diffs start at zero (they accumulate). */
  layer.rng = saved;
  layer.ops->forward(&layer, bottom, top);
  for (int t = 0; t < nt; t++) memcpy(top[t]->diff, weights[t], top[t]->count * sizeof(float));
  for (int p = 0; p < layer.num_params; p++) memset(layer.params[p]->diff, 0, layer.params[p]->count * sizeof(float));
  bool propagate[4];
  for (int b = 0; b < nb; b++) propagate[b] = !((c->skip_bottoms | layer.ops->no_backward_bottoms) >> b & 1);
  /* In-place layers would overwrite the bottom; the checker always uses separate tops. */
  layer.ops->backward(&layer, top, propagate, bottom);
  float *bottom_grad[4] = {0}, *param_grad[CG_LAYER_MAX_PARAMS] = {0};
  for (int b = 0; b < nb; b++) {
    bottom_grad[b] = malloc((bottom[b]->count ? bottom[b]->count : 1) * sizeof(float));
    memcpy(bottom_grad[b], bottom[b]->diff, bottom[b]->count * sizeof(float));
  }
  for (int p = 0; p < layer.num_params; p++) {
    param_grad[p] = malloc((layer.params[p]->count ? layer.params[p]->count : 1) * sizeof(float));
    memcpy(param_grad[p], layer.params[p]->diff, layer.params[p]->count * sizeof(float));
  }
  failures = 0;
  int checked = 0;
  for (int b = 0; b < nb; b++)
    if (propagate[b])
      failures += compare("bottom", b, bottom[b]->data, bottom[b]->count, bottom_grad[b], c, &layer, bottom, top, nt,
                          weights, saved, &checked);
  if (!c->skip_params)
    for (int p = 0; p < layer.num_params; p++) {
      grad_case no_kink = *c;
      no_kink.check_kink = false;
      failures += compare("param", p, layer.params[p]->data, layer.params[p]->count, param_grad[p], &no_kink, &layer,
                          bottom, top, nt, weights, saved, &checked);
    }
  if (elements_checked) *elements_checked = checked;
  for (int b = 0; b < nb; b++) free(bottom_grad[b]);
  for (int p = 0; p < layer.num_params; p++) free(param_grad[p]);
done:
  cg_layer_destroy(&layer);
  for (int t = 0; t < nt; t++) free(weights[t]);
  for (int b = 0; b < nb; b++) cg_blob_free(bottom[b]);
  for (int t = 0; t < nt; t++) cg_blob_free(top[t]);
  protobuf_c_message_free_unpacked(msg, NULL);
  return failures;
}
