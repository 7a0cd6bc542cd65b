/* Source + transform + partition + prefetch for the data layers (see data_feed.h). */
#include "data/data_feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "core/net_impl.h"
#include "data/partition.h"

static uint64_t seed_of(const cg_layer *l) {
  cg_rng copy = l->rng;
  return cg_rng_next(&copy);
}

/* Shape of the first readable record this rank reads; bad ones are passed over
 * only when skipping is on. */
static int probe_shape(cg_data_feed *f, uint64_t position) {
  cg_prefetch_config *c = &f->pcfg;
  cg_partition part;
  int rc = cg_partition_init(&part, cg_source_count(f->source), c->rank_share ? 0 : c->rank,
                             c->rank_share ? 1 : c->world, c->shuffle, c->seed);
  if (!rc && c->exact) cg_partition_exact(&part);
  if (rc) return cg_error_wrap(rc, "%s '%s': ", cg_source_type(f->source), cg_source_location(f->source));
  cg_pixels px = {0};
  size_t tries = c->skip_bad ? 100 : 1;
  for (size_t i = 0; i < tries; i++) {
    cg_record rec;
    size_t index = cg_partition_index(&part, position + i);
    rc = cg_source_get(f->source, index, &rec);
    if (!rc) {
      char where[512];
      snprintf(where, sizeof where, "'%.300s' in %.200s", rec.id ? rec.id : "?", cg_source_location(f->source));
      rc = cg_transform_load(&f->transform, &rec, &px, where);
    }
    if (!rc) break;
    if (c->skip_bad) CG_LOG_WARN("skipping a bad record (CAFFEGRID_SKIP_BAD_RECORDS): %s", cg_error_message());
  }
  cg_partition_free(&part);
  if (!rc) {
    c->channels = px.channels;
    cg_transform_out_shape(&f->transform, px.channels, px.height, px.width, &c->height, &c->width);
    if (f->transform.crop_size && (f->transform.crop_size > px.height || f->transform.crop_size > px.width))
      rc = cg_error(CG_ERR_SHAPE, "crop_size %d is larger than the first record's %dx%d", f->transform.crop_size,
                    px.height, px.width);
  }
  cg_pixels_free(&px);
  return rc;
}

int cg_data_feed_open(cg_layer *l, const cg_data_feed_config *config, cg_data_feed **out) {
  *out = NULL;
  if (config->batch_size <= 0) return cg_error(CG_ERR_INVALID, "batch_size must be positive");
  cg_data_feed *f = calloc(1, sizeof *f);
  if (!f) return cg_error(CG_ERR_NOMEM, "out of memory");
  f->layer_name = l->name;
  int rc = cg_transform_init(&f->transform, l->param ? l->param->transform_param : NULL, l->phase == CG_TRAIN);
  if (rc) {
    free(f);
    return rc;
  }
  *out = f; /* from here cg_data_feed_close cleans up */
  if (config->color != CG_COLOR_NATIVE) f->transform.color = config->color;
  f->transform.resize_h = config->resize_h;
  f->transform.resize_w = config->resize_w;
  cg_prefetch_config *c = &f->pcfg;
  c->transform = &f->transform;
  c->batch_size = config->batch_size;
  c->rank = l->net ? l->net->opt.rank : 0;
  c->world = l->net && l->net->opt.world_size > 0 ? l->net->opt.world_size : 1;
  c->shuffle = config->shuffle;
  c->rank_share = config->rank_share;
  c->exact = l->net && l->net->opt.exact_pass;
  c->seed = seed_of(l);
  c->depth = config->depth > 0 ? config->depth : 4;
  /* the net's options (the CLI and Python fill them from CAFFEGRID_DATA_THREADS and
   * CAFFEGRID_SKIP_BAD_RECORDS): 0 threads means the default, -1 none */
  int threads = l->net ? l->net->opt.data_threads : 0;
  if (threads < -1 || threads > 64)
    return cg_error(CG_ERR_INVALID, "data_threads %d: expected -1 (none) to 64", threads);
  c->threads = threads == 0 ? 1 : threads < 0 ? 0 : threads;
  c->skip_bad = l->net && l->net->opt.skip_bad_records;
  c->max_bad_fraction = l->net ? l->net->opt.max_bad_fraction : 0;
  rc = cg_source_open(config->source_type, config->location, config->options, &f->source);
  if (rc) return rc;
  c->source = f->source;
  uint64_t start = 0;
  if (config->rand_skip) { /* drawn from a copy: l->rng stays as the net seeded it */
    cg_rng copy = l->rng;
    cg_rng_next(&copy);
    start = cg_rng_below(&copy, (uint64_t)config->rand_skip + 1);
  }
  rc = probe_shape(f, start);
  if (!rc) rc = cg_prefetch_create(c, start, &f->prefetch);
  return rc;
}

void cg_data_feed_shape(const cg_data_feed *f, int *batch, int *channels, int *height, int *width) {
  *batch = f->pcfg.batch_size;
  *channels = f->pcfg.channels;
  *height = f->pcfg.height;
  *width = f->pcfg.width;
}

int cg_data_feed_next(cg_data_feed *f, float *data, float *labels) {
  const cg_batch *b;
  int rc = cg_prefetch_next(f->prefetch, &b);
  if (rc) return rc;
  f->last = b;
  size_t item = (size_t)f->pcfg.channels * (size_t)f->pcfg.height * (size_t)f->pcfg.width;
  memcpy(data, b->data, (size_t)b->size * item * sizeof(float));
  if (labels) memcpy(labels, b->labels, (size_t)b->size * sizeof(float));
  return CG_OK;
}

static cg_prefetch_stats feed_stats(const cg_data_feed *f) {
  cg_prefetch_stats s = f->carried;
  if (f->prefetch) {
    cg_prefetch_stats now = cg_prefetch_get_stats(f->prefetch);
    s.wait_seconds += now.wait_seconds;
    s.batches += now.batches;
    s.skipped += now.skipped;
  }
  return s;
}

uint64_t cg_data_feed_position(const cg_data_feed *f) { return cg_prefetch_position(f->prefetch); }

int cg_data_feed_seek(cg_data_feed *f, cg_layer *l, uint64_t position) {
  uint64_t seed = seed_of(l);
  if (seed == f->pcfg.seed) return cg_prefetch_seek(f->prefetch, position);
  f->carried = feed_stats(f);
  cg_prefetch_free(f->prefetch);
  f->prefetch = NULL;
  f->pcfg.seed = seed;
  return cg_prefetch_create(&f->pcfg, position, &f->prefetch);
}

void cg_data_feed_close(cg_data_feed *f) {
  if (!f) return;
  cg_prefetch_stats s = feed_stats(f);
  if (s.skipped)
    CG_LOG_WARN("Data layer '%s': skipped %llu bad records of %llu read (CAFFEGRID_SKIP_BAD_RECORDS)",
                f->layer_name ? f->layer_name : "?", (unsigned long long)s.skipped,
                (unsigned long long)(s.batches * (uint64_t)f->pcfg.batch_size));
  cg_prefetch_free(f->prefetch);
  cg_source_close(f->source);
  cg_transform_free(&f->transform);
  for (int i = 0; i < f->num_ids; i++) free(f->ids[i]);
  free(f->ids);
  free(f);
}

cg_prefetch_stats cg_data_feed_stats(const cg_data_feed *f) { return feed_stats(f); }

size_t cg_data_feed_rank_records(const cg_data_feed *f) {
  size_t n = cg_source_count(f->source), w = (size_t)f->pcfg.world, r = (size_t)f->pcfg.rank;
  if (f->pcfg.rank_share) w = 1, r = 0;
  return f->pcfg.exact ? (n - r + w - 1) / w : n / w;
}

int cg_data_feed_batch_ids(cg_data_feed *f, const char **ids, bool *valid, int max) {
  const cg_batch *b = f->last;
  if (!b) return 0;
  if (f->num_ids < b->size) {
    char **grown = realloc(f->ids, (size_t)b->size * sizeof *grown);
    if (!grown) return cg_error(CG_ERR_NOMEM, "out of memory");
    for (int i = f->num_ids; i < b->size; i++) grown[i] = NULL;
    f->ids = grown;
    f->num_ids = b->size;
  }
  size_t rank_records = cg_data_feed_rank_records(f);
  for (int i = 0; i < b->size && i < max; i++) {
    cg_record rec;
    int rc = cg_source_get(f->source, b->indices[i], &rec);
    if (rc) return rc;
    free(f->ids[i]);
    f->ids[i] = strdup(rec.id ? rec.id : "");
    ids[i] = f->ids[i];
    /* in an exact pass the rows after this rank's last record are repeats that fill the batch */
    if (valid) valid[i] = !f->pcfg.exact || b->position + (uint64_t)i < rank_records;
  }
  return b->size < max ? b->size : max;
}
