/* The Data layer: batches of Datum records from an LMDB, transformed as Caffe's
 * DataTransformer does. With several ranks, rank r reads records r, r+W, r+2W, ... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "core/net_impl.h"
#include "data/lmdb_reader.h"
#include "data/transform.h"

typedef struct data_state {
  cg_lmdb_reader *db;
  cg_transform transform;
  int batch, channels, height, width, out_h, out_w;
  int rank, world;
  size_t position; /* records consumed, counted over the whole database */
} data_state;

static int data_set_position(cg_layer *l, uint64_t position);

static int read_datum(data_state *s, Caffe__Datum **out, char *key_buf, size_t key_size) {
  const char *key;
  size_t key_len, len;
  const uint8_t *value;
  /* skip the records other ranks read */
  for (;;) {
    int rc = cg_lmdb_next(s->db, &key, &key_len, &value, &len);
    if (rc) return rc;
    size_t index = s->position++ % cg_lmdb_count(s->db);
    if ((int)(index % (size_t)s->world) == s->rank) break;
  }
  snprintf(key_buf, key_size, "'%.*s' in %s", (int)(key_len < 200 ? key_len : 200), key, cg_lmdb_path(s->db));
  *out = caffe__datum__unpack(NULL, len, value);
  if (!*out) return cg_error(CG_ERR_CORRUPT, "record %s is not a valid Datum", key_buf);
  return CG_OK;
}

static int data_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  const Caffe__DataParameter *p = l->param->data_param;
  if (!p || !p->source || !p->source[0]) return cg_error(CG_ERR_INVALID, "needs data_param.source");
  if (p->backend != CAFFE__DATA_PARAMETER__DB__LMDB)
    return cg_error(CG_ERR_UNSUPPORTED, "data_param.backend: only LMDB is supported (LevelDB is not); set backend: LMDB");
  if (p->batch_size == 0) return cg_error(CG_ERR_INVALID, "data_param.batch_size must be positive");
  data_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = s;
  s->batch = (int)p->batch_size;
  s->rank = l->net ? l->net->opt.rank : 0;
  s->world = l->net ? l->net->opt.world_size : 1;
  int rc = cg_transform_init(&s->transform, l->param->transform_param, l->phase == CG_TRAIN);
  if (!rc) rc = cg_lmdb_open(p->source, &s->db);
  if (rc) return rc;
  /* The first record gives the shape, as in Caffe. */
  Caffe__Datum *d = NULL;
  char where[300];
  rc = read_datum(s, &d, where, sizeof where);
  if (rc) return rc;
  s->channels = d->channels, s->height = d->height, s->width = d->width;
  protobuf_c_message_free_unpacked(&d->base, NULL);
  cg_lmdb_rewind(s->db);
  s->position = 0;
  if (p->rand_skip) {
    rc = data_set_position(l, cg_rng_below(&l->rng, p->rand_skip + 1ull));
    if (rc) return rc;
  }
  if (s->channels <= 0 || s->height <= 0 || s->width <= 0)
    return cg_error(CG_ERR_CORRUPT, "first record %s has shape %dx%dx%d", where, s->channels, s->height, s->width);
  cg_transform_out_shape(&s->transform, s->channels, s->height, s->width, &s->out_h, &s->out_w);
  (void)top;
  return CG_OK;
}

static int data_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  data_state *s = l->priv;
  int rc = cg_blob_reshape4(top[0], s->batch, s->channels, s->out_h, s->out_w);
  if (!rc && l->num_tops > 1) rc = cg_blob_reshape(top[1], 1, &s->batch);
  return rc;
}

static int data_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  data_state *s = l->priv;
  size_t per_item = (size_t)s->channels * s->out_h * s->out_w;
  for (int i = 0; i < s->batch; i++) {
    Caffe__Datum *d = NULL;
    char where[300];
    int rc = read_datum(s, &d, where, sizeof where);
    if (rc) return rc;
    if (d->channels != s->channels || d->height != s->height || d->width != s->width) {
      rc = cg_error(CG_ERR_SHAPE, "record %s is %dx%dx%d, the first record was %dx%dx%d", where, d->channels,
                    d->height, d->width, s->channels, s->height, s->width);
    } else {
      rc = cg_transform_datum(&s->transform, d, top[0]->data + per_item * (size_t)i, &l->rng, where);
    }
    if (l->num_tops > 1) top[1]->data[i] = (float)d->label;
    protobuf_c_message_free_unpacked(&d->base, NULL);
    if (rc) return rc;
  }
  return CG_OK;
}

static void data_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top, (void)propagate_down, (void)bottom;
}

static uint64_t data_get_position(const cg_layer *l) { return ((const data_state *)l->priv)->position; }

static int data_set_position(cg_layer *l, uint64_t position) {
  data_state *s = l->priv;
  cg_lmdb_rewind(s->db);
  s->position = 0;
  size_t n = cg_lmdb_count(s->db);
  for (uint64_t i = 0; i < position % n; i++) {
    const char *k;
    const uint8_t *v;
    size_t kl, vl;
    int rc = cg_lmdb_next(s->db, &k, &kl, &v, &vl);
    if (rc) return rc;
  }
  s->position = position;
  return CG_OK;
}

static void data_destroy(cg_layer *l) {
  data_state *s = l->priv;
  if (!s) return;
  cg_lmdb_close(s->db);
  cg_transform_free(&s->transform);
  free(s);
}

const cg_layer_ops cg_layer_data = {
    .type = "Data", .min_bottoms = 0, .max_bottoms = 0, .min_tops = 1, .max_tops = 2,
    .setup = data_setup, .reshape = data_reshape, .forward = data_forward, .backward = data_backward,
    .destroy = data_destroy, .get_position = data_get_position, .set_position = data_set_position,
};
