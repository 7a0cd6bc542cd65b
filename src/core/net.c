/* Running a built net: forward, backward, accessors and teardown. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/net_impl.h"
#include "math/fpmode.h"
#include "math/math.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A layer failed on one sample of the batch: its record's id (from the data layer)
 * goes into the message, as a data layer names a record it cannot read. */
static void name_bad_record(cg_net *net, int sample, int rc) {
  const char *ids[4096];
  bool valid[4096];
  if (sample < 0 || sample >= 4096) return;
  int got = cg_net_batch_ids(net, ids, valid, sample + 1);
  if (got > sample && ids[sample] && ids[sample][0]) cg_error_wrap(rc, "record '%s': ", ids[sample]);
}

/* Layers start..end (inclusive), each reshaped to its bottoms first; *loss gets the
 * weighted sum of the loss tops of those layers. */
static int net_forward(cg_net *net, int start, int end, float *loss) {
  double total = 0;
  for (int i = start; i <= end; i++) {
    cg_net_layer *nl = &net->layers[i];
    double begin = net->profiling ? now_ms() : 0;
    nl->layer.bad_sample = -1;
    int rc = nl->layer.ops->reshape(&nl->layer, nl->bottoms, nl->tops);
    if (!rc) rc = nl->layer.ops->forward(&nl->layer, nl->bottoms, nl->tops);
    if (rc) {
      name_bad_record(net, nl->layer.bad_sample, rc);
      return cg_error_wrap(rc, "%s: layer '%s' (%s) forward: ", net->opt.source_name, nl->layer.name,
                           nl->layer.ops->type);
    }
    if (net->profiling) nl->forward_ms += now_ms() - begin;
    for (int j = 0; j < nl->num_tops; j++)
      if (nl->loss_weights[j] != 0) {
        const float *d = nl->tops[j]->data;
        double s = 0;
        for (size_t k = 0; k < nl->tops[j]->count; k++) s += d[k];
        total += nl->loss_weights[j] * s;
      }
  }
  if (loss) *loss = (float)total;
  return CG_OK;
}

int cg_net_forward(cg_net *net, float *loss) {
  unsigned fp = cg_fp_enter();
  int rc = net_forward(net, 0, net->num_layers - 1, loss);
  cg_fp_leave(fp);
  return rc;
}

static int check_range(const cg_net *net, int first, int last, const char *what) {
  if (first < 0 || last < 0 || first >= net->num_layers || last >= net->num_layers)
    return cg_error(CG_ERR_INVALID, "%s: layers %d to %d, but net '%s' has layers 0 to %d", what, first, last,
                    net->name, net->num_layers - 1);
  return CG_OK;
}

int cg_net_forward_range(cg_net *net, int start, int end, float *loss) {
  int rc = check_range(net, start, end, "forward");
  if (rc) return rc;
  unsigned fp = cg_fp_enter();
  rc = net_forward(net, start, end, loss);
  cg_fp_leave(fp);
  return rc;
}

int cg_net_reshape(cg_net *net) {
  for (int i = 0; i < net->num_layers; i++) {
    cg_net_layer *nl = &net->layers[i];
    int rc = nl->layer.ops->reshape(&nl->layer, nl->bottoms, nl->tops);
    if (rc)
      return cg_error_wrap(rc, "%s: layer '%s' (%s) reshape: ", net->opt.source_name, nl->layer.name,
                           nl->layer.ops->type);
  }
  return CG_OK;
}

/* Layers start down to end (inclusive), after the loss tops' diffs are set to their
 * loss weights (Caffe keeps them there from Init; our forward does not touch diffs). */
static void net_backward(cg_net *net, int start, int end) {
  for (int i = 0; i < net->num_layers; i++) {
    cg_net_layer *nl = &net->layers[i];
    for (int j = 0; j < nl->num_tops; j++)
      if (nl->loss_weights[j] != 0) cg_set(nl->tops[j]->count, nl->loss_weights[j], nl->tops[j]->diff);
  }
  for (int i = start; i >= end; i--) {
    cg_net_layer *nl = &net->layers[i];
    if (nl->need_backward) {
      double begin = net->profiling ? now_ms() : 0;
      nl->layer.ops->backward(&nl->layer, nl->tops, nl->bottom_need_backward, nl->bottoms);
      if (net->profiling) nl->backward_ms += now_ms() - begin;
    }
    if (net->backward_hook) net->backward_hook(i, net->backward_hook_user);
  }
}

void cg_net_backward(cg_net *net) {
  unsigned fp = cg_fp_enter();
  net_backward(net, net->num_layers - 1, 0);
  cg_fp_leave(fp);
}

int cg_net_backward_range(cg_net *net, int start, int end) {
  int rc = check_range(net, end, start, "backward");
  if (rc) return rc;
  unsigned fp = cg_fp_enter();
  net_backward(net, start, end);
  cg_fp_leave(fp);
  return CG_OK;
}

void cg_net_clear_param_diffs(cg_net *net) { memset(net->param_diff, 0, net->param_count * sizeof(float)); }

void cg_net_free(cg_net *net) {
  if (!net) return;
  for (int i = 0; i < net->num_layers; i++) {
    cg_net_layer *nl = &net->layers[i];
    cg_layer_destroy(&nl->layer);
    if (nl->synthesized) protobuf_c_message_free_unpacked(&nl->synthesized->base, NULL);
    free(nl->bottom_ids);
    free(nl->top_ids);
    free(nl->bottoms);
    free(nl->tops);
    free(nl->bottom_need_backward);
    free(nl->loss_weights);
  }
  free(net->layers);
  for (int i = 0; i < net->num_blobs; i++) cg_blob_free(net->blobs[i]);
  free(net->blobs);
  free(net->output_ids);
  free(net->learnable);
  free(net->param_data);
  free(net->param_diff);
  free(net->name);
  free((char *)net->opt.source_name);
  if (net->owned_param) protobuf_c_message_free_unpacked(net->owned_param, NULL);
  free(net);
}

const char *cg_net_name(const cg_net *net) { return net->name; }
int cg_net_num_layers(const cg_net *net) { return net->num_layers; }
const char *cg_net_layer_name(const cg_net *net, int i) { return net->layers[i].layer.name; }
const char *cg_net_layer_type(const cg_net *net, int i) { return net->layers[i].layer.ops->type; }
int cg_net_layer_num_bottoms(const cg_net *net, int i) { return net->layers[i].num_bottoms; }
int cg_net_layer_bottom_index(const cg_net *net, int i, int j) { return net->layers[i].bottom_ids[j]; }
int cg_net_layer_num_tops(const cg_net *net, int i) { return net->layers[i].num_tops; }
int cg_net_layer_top_index(const cg_net *net, int i, int j) { return net->layers[i].top_ids[j]; }

cg_blob *cg_net_blob(const cg_net *net, const char *name) {
  for (int i = 0; i < net->num_blobs; i++)
    if (strcmp(net->blobs[i]->name, name) == 0) return net->blobs[i];
  return NULL;
}

int cg_net_num_blobs(const cg_net *net) { return net->num_blobs; }
cg_blob *cg_net_blob_at(const cg_net *net, int i) { return net->blobs[i]; }
int cg_net_num_outputs(const cg_net *net) { return net->num_outputs; }
cg_blob *cg_net_output(const cg_net *net, int i) { return net->blobs[net->output_ids[i]]; }

float cg_net_output_loss_weight(const cg_net *net, int i) {
  int id = net->output_ids[i];
  for (int l = net->num_layers - 1; l >= 0; l--)
    for (int j = 0; j < net->layers[l].num_tops; j++)
      if (net->layers[l].top_ids[j] == id) return net->layers[l].loss_weights[j];
  return 0;
}

int cg_net_layer_num_params(const cg_net *net, int i) { return net->layers[i].layer.num_params; }
cg_blob *cg_net_layer_param(const cg_net *net, int i, int j) { return net->layers[i].layer.params[j]; }
size_t cg_net_param_count(const cg_net *net) { return net->param_count; }
float *cg_net_param_data(cg_net *net) { return net->param_data; }
float *cg_net_param_diff(cg_net *net) { return net->param_diff; }
int cg_net_num_learnable(const cg_net *net) { return net->num_learnable; }

cg_blob *cg_net_learnable(const cg_net *net, int i, float *lr_mult, float *decay_mult) {
  if (lr_mult) *lr_mult = net->learnable[i].lr_mult;
  if (decay_mult) *decay_mult = net->learnable[i].decay_mult;
  return net->learnable[i].blob;
}

void cg_net_set_profiling(cg_net *net, bool on) {
  net->profiling = on;
  for (int i = 0; i < net->num_layers; i++) net->layers[i].forward_ms = net->layers[i].backward_ms = 0;
}

void cg_net_layer_times(const cg_net *net, int i, double *forward_ms, double *backward_ms) {
  *forward_ms = net->layers[i].forward_ms;
  *backward_ms = net->layers[i].backward_ms;
}

enum { STATE_WORDS_PER_LAYER = 5 };

size_t cg_net_state_words(const cg_net *net) { return (size_t)net->num_layers * STATE_WORDS_PER_LAYER; }

void cg_net_get_state(const cg_net *net, uint64_t *words) {
  for (int i = 0; i < net->num_layers; i++) {
    const cg_layer *l = &net->layers[i].layer;
    uint64_t *w = words + (size_t)i * STATE_WORDS_PER_LAYER;
    memcpy(w, l->rng.s, sizeof l->rng.s);
    w[4] = l->ops->get_position ? l->ops->get_position(l) : 0;
  }
}

int cg_net_set_state(cg_net *net, const uint64_t *words, size_t num_words) {
  if (num_words != cg_net_state_words(net))
    return cg_error(CG_ERR_INVALID, "run state holds %zu words, this net needs %zu (saved from a different net?)",
                    num_words, cg_net_state_words(net));
  for (int i = 0; i < net->num_layers; i++) {
    cg_layer *l = &net->layers[i].layer;
    const uint64_t *w = words + (size_t)i * STATE_WORDS_PER_LAYER;
    memcpy(l->rng.s, w, sizeof l->rng.s);
    if (l->ops->set_position) {
      int rc = l->ops->set_position(l, w[4]);
      if (rc) return rc;
    }
  }
  return CG_OK;
}

void cg_net_share_weights_from(cg_net *dst, const cg_net *src) {
  for (int i = 0; i < dst->num_layers; i++) {
    cg_layer *d = &dst->layers[i].layer;
    if (!d->num_params || dst->layers[i].synthesized) continue;
    for (int j = 0; j < src->num_layers; j++) {
      const cg_layer *s = &src->layers[j].layer;
      if (s->num_params != d->num_params || strcmp(s->name, d->name) != 0) continue;
      for (int k = 0; k < d->num_params; k++)
        if (d->params[k]->count == s->params[k]->count)
          memcpy(d->params[k]->data, s->params[k]->data, d->params[k]->count * sizeof(float));
      break;
    }
  }
}

size_t cg_net_learnable_offset(const cg_net *net, int i) { return net->learnable[i].offset; }
int cg_net_learnable_first_layer(const cg_net *net, int i) { return net->learnable[i].first_layer; }

void cg_net_set_backward_hook(cg_net *net, cg_backward_hook hook, void *user) {
  net->backward_hook = hook;
  net->backward_hook_user = user;
}

double cg_net_data_wait_seconds(const cg_net *net) {
  double total = 0;
  for (int i = 0; i < net->num_layers; i++) {
    const cg_layer *l = &net->layers[i].layer;
    if (l->ops->data_wait_seconds) total += l->ops->data_wait_seconds(l);
  }
  return total;
}

int cg_net_batch_ids(cg_net *net, const char **ids, bool *valid, int max) {
  for (int i = 0; i < net->num_layers; i++) {
    cg_layer *l = &net->layers[i].layer;
    if (l->ops->batch_ids) return l->ops->batch_ids(l, ids, valid, max);
  }
  return 0;
}

size_t cg_net_rank_records(const cg_net *net) {
  for (int i = 0; i < net->num_layers; i++) {
    const cg_layer *l = &net->layers[i].layer;
    if (l->ops->rank_records) return l->ops->rank_records(l);
  }
  return 0;
}

