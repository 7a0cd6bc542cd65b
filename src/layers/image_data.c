/* Caffe's ImageData layer: images named in a list file ("path label" per line,
 * image_data_param.source, paths relative to root_folder), decoded as colour or
 * grey (is_color), resized to new_height x new_width when given, optionally
 * reshuffled every epoch, then transformed like any data layer. Rank partitioning,
 * prefetching and exact resume come from src/data (data_feed.h). */
#include <stdlib.h>

#include "core/layer.h"
#include "data/data_feed.h"

typedef struct image_data_state {
  cg_data_feed *feed;
  cg_image_list_options options;
} image_data_state;

static int image_data_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__ImageDataParameter *p = l->param->image_data_param;
  if (!p || !p->source || !p->source[0]) return cg_error(CG_ERR_INVALID, "needs image_data_param.source");
  if (p->batch_size == 0) return cg_error(CG_ERR_INVALID, "image_data_param.batch_size must be positive");
  if ((p->new_height == 0) != (p->new_width == 0))
    return cg_error(CG_ERR_INVALID, "image_data_param: give both new_height and new_width, or neither (got %u and %u)",
                    p->new_height, p->new_width);
  image_data_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = s;
  s->options.root_folder = p->root_folder ? p->root_folder : "";
  cg_data_feed_config c = {
      .source_type = "image_list",
      .location = p->source,
      .options = &s->options,
      .batch_size = (int)p->batch_size,
      .shuffle = p->shuffle,
      .rand_skip = p->rand_skip,
      .depth = 4,
      .color = p->is_color ? CG_COLOR_BGR : CG_COLOR_GRAY,
      .resize_h = (int)p->new_height,
      .resize_w = (int)p->new_width,
  };
  return cg_data_feed_open(l, &c, &s->feed);
}

static int image_data_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  image_data_state *s = l->priv;
  int n, c, h, w;
  cg_data_feed_shape(s->feed, &n, &c, &h, &w);
  int rc = cg_blob_reshape4(top[0], n, c, h, w);
  if (!rc && l->num_tops > 1) rc = cg_blob_reshape(top[1], 1, &n);
  return rc;
}

static int image_data_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  image_data_state *s = l->priv;
  return cg_data_feed_next(s->feed, top[0]->data, l->num_tops > 1 ? top[1]->data : NULL);
}

static void image_data_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top, (void)propagate_down, (void)bottom;
}

static uint64_t image_data_get_position(const cg_layer *l) {
  return cg_data_feed_position(((const image_data_state *)l->priv)->feed);
}

static int image_data_set_position(cg_layer *l, uint64_t position) {
  return cg_data_feed_seek(((image_data_state *)l->priv)->feed, l, position);
}

static double image_data_wait_seconds(const cg_layer *l) {
  const image_data_state *s = l->priv;
  return s && s->feed ? cg_data_feed_stats(s->feed).wait_seconds : 0;
}

static void image_data_destroy(cg_layer *l) {
  image_data_state *s = l->priv;
  if (!s) return;
  cg_data_feed_close(s->feed);
  free(s);
}

static int image_data_batch_ids(cg_layer *l, const char **ids, bool *valid, int max) {
  return cg_data_feed_batch_ids(((image_data_state *)l->priv)->feed, ids, valid, max);
}

static size_t image_data_rank_records(const cg_layer *l) {
  return cg_data_feed_rank_records(((const image_data_state *)l->priv)->feed);
}

const cg_layer_ops cg_layer_image_data = {
    .type = "ImageData",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .setup = image_data_setup,
    .reshape = image_data_reshape,
    .forward = image_data_forward,
    .backward = image_data_backward,
    .destroy = image_data_destroy,
    .get_position = image_data_get_position,
    .set_position = image_data_set_position,
    .data_wait_seconds = image_data_wait_seconds,
    .batch_ids = image_data_batch_ids,
    .rank_records = image_data_rank_records,
};
