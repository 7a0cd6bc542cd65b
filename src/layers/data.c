/* The Data layer: batches of Datum records from an LMDB (raw, float or encoded
 * JPEG/PNG) or of the records of Hadoop SequenceFiles, transformed as Caffe's DataTransformer does, prepared ahead by
 * background threads. With W ranks each reads its own floor(N/W) records per
 * epoch (src/data/partition.h); the position saved in snapshots resumes exactly. */
#include <stdlib.h>

#include "caffegrid/data.h"
#include "core/layer.h"
#include "data/data_feed.h"

typedef struct data_state {
  cg_data_feed *feed;
} data_state;

/* What reads `source`, decided by what it holds (caffegrid/data.h, as `inspect`
 * and the Python module decide): an LMDB, or SequenceFiles of Datums or images
 * (how CaffeOnSpark users keep theirs). */
static int source_type_of(const char *source, const char **type) {
  cg_data_kind kind;
  if (cg_data_kind_of(source, &kind) != CG_OK) {
    *type = "lmdb"; /* not there or unreadable: the LMDB reader says so, as Caffe would */
    return CG_OK;
  }
  switch (kind) {
  case CG_DATA_LMDB: *type = "lmdb"; return CG_OK;
  case CG_DATA_SEQFILE:
  case CG_DATA_SEQFILE_DIR: *type = "seqfile"; return CG_OK;
  case CG_DATA_HDF5:
  case CG_DATA_HDF5_LIST:
    return cg_error(CG_ERR_INVALID, "data_param.source '%s' is HDF5, not a database: read it with an HDF5Data layer",
                    source);
  case CG_DATA_IMAGE_LIST:
    return cg_error(CG_ERR_INVALID,
                    "data_param.source '%s' is a text file, not a database: an image list is read by an ImageData "
                    "layer",
                    source);
  default:
    return cg_error(CG_ERR_INVALID, "data_param.source '%s' is not an LMDB or a SequenceFile", source);
  }
}

static int data_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__DataParameter *p = l->param->data_param;
  if (!p || !p->source || !p->source[0]) return cg_error(CG_ERR_INVALID, "needs data_param.source");
  /* Caffe's default backend is LevelDB; one not written is decided by the source itself */
  if (p->has_backend && p->backend != CAFFE__DATA_PARAMETER__DB__LMDB)
    return cg_error(CG_ERR_UNSUPPORTED,
                    "data_param.backend: LevelDB is not supported; convert the data to LMDB (backend: LMDB)");
  if (p->batch_size == 0) return cg_error(CG_ERR_INVALID, "data_param.batch_size must be positive");
  const char *type = NULL;
  int rc = source_type_of(p->source, &type);
  if (rc) return rc;
  cg_data_feed_config c = {
      .source_type = type,
      .location = p->source,
      .batch_size = (int)p->batch_size,
      .rand_skip = p->rand_skip,
      .depth = (int)p->prefetch,
      .color = p->force_encoded_color ? CG_COLOR_BGR : CG_COLOR_NATIVE,
  };
  data_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = s;
  return cg_data_feed_open(l, &c, &s->feed);
}

static int data_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  int n, c, h, w;
  cg_data_feed_shape(((data_state *)l->priv)->feed, &n, &c, &h, &w);
  int rc = cg_blob_reshape4(top[0], n, c, h, w);
  if (!rc && l->num_tops > 1) rc = cg_blob_reshape(top[1], 1, &n);
  return rc;
}

static int data_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  return cg_data_feed_next(((data_state *)l->priv)->feed, top[0]->data, l->num_tops > 1 ? top[1]->data : NULL);
}

static void data_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top, (void)propagate_down, (void)bottom;
}

static uint64_t data_get_position(const cg_layer *l) {
  return cg_data_feed_position(((const data_state *)l->priv)->feed);
}

static int data_set_position(cg_layer *l, uint64_t position) {
  return cg_data_feed_seek(((data_state *)l->priv)->feed, l, position);
}

static double data_wait_seconds(const cg_layer *l) {
  const data_state *s = l->priv;
  return s && s->feed ? cg_data_feed_stats(s->feed).wait_seconds : 0;
}

static void data_destroy(cg_layer *l) {
  data_state *s = l->priv;
  if (!s) return;
  cg_data_feed_close(s->feed);
  free(s);
}

static int data_batch_ids(cg_layer *l, const char **ids, bool *valid, int max) {
  return cg_data_feed_batch_ids(((data_state *)l->priv)->feed, ids, valid, max);
}

static size_t data_rank_records(const cg_layer *l) {
  return cg_data_feed_rank_records(((const data_state *)l->priv)->feed);
}

const cg_layer_ops cg_layer_data = {
    .type = "Data",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .setup = data_setup,
    .reshape = data_reshape,
    .forward = data_forward,
    .backward = data_backward,
    .destroy = data_destroy,
    .get_position = data_get_position,
    .set_position = data_set_position,
    .data_wait_seconds = data_wait_seconds,
    .batch_ids = data_batch_ids,
    .rank_records = data_rank_records,
};
