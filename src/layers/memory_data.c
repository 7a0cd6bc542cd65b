/* MemoryData: batches from arrays the host program feeds, cycled in order; or,
 * once a source is attached (cg_net_feed_source), batches read from it exactly as
 * the Data layer reads its database: the layer's transform_param (mean, crop,
 * mirror, scale, colour) applied per record in the prefetch threads, with the
 * Data layer's per-record random draws, positions saved in snapshots. */
#include "layers/memory_data.h"

#include <stdlib.h>
#include <string.h>

#include "data/data_feed.h"

typedef struct memory_state {
  int batch, channels, height, width; /* the top's */
  int in_height, in_width;            /* memory_data_param's: the records' size before a crop */
  const float *data, *labels;
  int n, position;
  cg_data_feed *feed;        /* when reading from a source */
  uint64_t pending_position; /* restored before a source was attached */
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
  s->in_height = s->height, s->in_width = s->width;
  /* with a crop the top is crop_size square, cut from records of memory_data_param's size (CaffeOnSpark) */
  const Caffe__TransformationParameter *t = l->param->transform_param;
  if (t && t->crop_size) {
    if ((int)t->crop_size > s->height || (int)t->crop_size > s->width) {
      int h = s->height, w = s->width;
      free(s);
      return cg_error(CG_ERR_INVALID, "transform_param.crop_size %u is larger than memory_data_param's %dx%d",
                      t->crop_size, h, w);
    }
    s->height = s->width = (int)t->crop_size;
  }
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
  cg_data_feed_close(s->feed);
  s->feed = NULL;
  s->data = data, s->labels = labels, s->n = n, s->position = 0;
  return CG_OK;
}

int cg_memory_data_feed_source(cg_layer *l, const char *type, const char *location,
                               const cg_feed_source_options *options) {
  memory_state *s = l->priv;
  cg_data_feed_close(s->feed);
  s->feed = NULL;
  s->data = s->labels = NULL;
  cg_data_feed_config c = {.source_type = type, .location = location, .batch_size = s->batch,
                           .rank_share = options->rank_share};
  if (options->resize) c.resize_h = s->in_height, c.resize_w = s->in_width;
  int rc = cg_data_feed_open(l, &c, &s->feed);
  if (!rc) {
    int n, ch, h, w;
    cg_data_feed_shape(s->feed, &n, &ch, &h, &w);
    if (ch != s->channels || h != s->height || w != s->width)
      rc = cg_error(CG_ERR_SHAPE,
                    "%s '%s': its records come out %dx%dx%d after transform_param, the layer's top is %dx%dx%d",
                    type, location, ch, h, w, s->channels, s->height, s->width);
  }
  if (!rc && s->pending_position) rc = cg_data_feed_seek(s->feed, l, s->pending_position);
  if (rc) {
    cg_data_feed_close(s->feed);
    s->feed = NULL;
    return cg_error_wrap(rc, "layer '%s': ", l->name);
  }
  return CG_OK;
}

static int memory_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  memory_state *s = l->priv;
  if (s->feed) return cg_data_feed_next(s->feed, top[0]->data, l->num_tops > 1 ? top[1]->data : NULL);
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

static void memory_destroy(cg_layer *l) {
  memory_state *s = l->priv;
  if (s) cg_data_feed_close(s->feed);
  free(s);
}

/* Arrays fed by the host keep no position here (the host replays them); a source's
 * position is saved and restored like the Data layer's. */
static uint64_t memory_get_position(const cg_layer *l) {
  const memory_state *s = l->priv;
  return s && s->feed ? cg_data_feed_position(s->feed) : s ? s->pending_position : 0;
}

static int memory_set_position(cg_layer *l, uint64_t position) {
  memory_state *s = l->priv;
  if (s->feed) return cg_data_feed_seek(s->feed, l, position);
  s->pending_position = position; /* applied when a source is attached */
  return CG_OK;
}

static double memory_wait_seconds(const cg_layer *l) {
  const memory_state *s = l->priv;
  return s && s->feed ? cg_data_feed_stats(s->feed).wait_seconds : 0;
}

static int memory_batch_ids(cg_layer *l, const char **ids, bool *valid, int max) {
  memory_state *s = l->priv;
  return s->feed ? cg_data_feed_batch_ids(s->feed, ids, valid, max) : 0;
}

static size_t memory_rank_records(const cg_layer *l) {
  const memory_state *s = l->priv;
  return s->feed ? cg_data_feed_rank_records(s->feed) : 0;
}

const cg_layer_ops cg_layer_memory_data = {
    .type = "MemoryData", .min_bottoms = 0, .max_bottoms = 0, .min_tops = 1, .max_tops = 2,
    .setup = memory_setup, .reshape = memory_reshape, .forward = memory_forward, .backward = memory_backward,
    .destroy = memory_destroy, .get_position = memory_get_position, .set_position = memory_set_position,
    .data_wait_seconds = memory_wait_seconds, .batch_ids = memory_batch_ids, .rank_records = memory_rank_records,
};
