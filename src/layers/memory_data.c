/* MemoryData: batches from arrays the host program feeds, cycled in order. */
#include "layers/memory_data.h"

#include <stdlib.h>
#include <string.h>

typedef struct memory_state {
  int batch, channels, height, width;
  const float *data, *labels;
  int n, position;
} memory_state;

static int memory_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__MemoryDataParameter *p = l->param->memory_data_param;
  if (!p) return cg_error(CG_ERR_INVALID, "needs memory_data_param");
  if (!p->batch_size || !p->channels || !p->height || !p->width)
    return cg_error(CG_ERR_INVALID, "memory_data_param needs batch_size, channels, height and width (all > 0)");
  memory_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  s->batch = (int)p->batch_size, s->channels = (int)p->channels, s->height = (int)p->height, s->width = (int)p->width;
  l->priv = s;
  return CG_OK;
}

static int memory_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  memory_state *s = l->priv;
  int rc = cg_blob_reshape4(top[0], s->batch, s->channels, s->height, s->width);
  if (!rc && l->num_tops > 1) rc = cg_blob_reshape(top[1], 1, &s->batch);
  return rc;
}

int cg_memory_data_feed(cg_layer *l, const float *data, const float *labels, int n) {
  memory_state *s = l->priv;
  if (n <= 0 || n % s->batch)
    return cg_error(CG_ERR_SHAPE, "layer '%s': fed %d samples, not a positive multiple of batch_size %d", l->name, n,
                    s->batch);
  s->data = data, s->labels = labels, s->n = n, s->position = 0;
  return CG_OK;
}

static int memory_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  memory_state *s = l->priv;
  if (!s->data) return cg_error(CG_ERR_INVALID, "no data has been fed to this MemoryData layer");
  size_t item = (size_t)s->channels * s->height * s->width;
  memcpy(top[0]->data, s->data + item * (size_t)s->position, item * (size_t)s->batch * sizeof(float));
  if (l->num_tops > 1) {
    if (s->labels) memcpy(top[1]->data, s->labels + s->position, (size_t)s->batch * sizeof(float));
    else memset(top[1]->data, 0, (size_t)s->batch * sizeof(float));
  }
  s->position = (s->position + s->batch) % s->n;
  return CG_OK;
}

static void memory_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top, (void)propagate_down, (void)bottom;
}

static void memory_destroy(cg_layer *l) { free(l->priv); }

const cg_layer_ops cg_layer_memory_data = {
    .type = "MemoryData", .min_bottoms = 0, .max_bottoms = 0, .min_tops = 1, .max_tops = 2,
    .setup = memory_setup, .reshape = memory_reshape, .forward = memory_forward, .backward = memory_backward,
    .destroy = memory_destroy,
};
