/* What the Data and ImageData layers share: a source, its transform, the rank
 * partition and the prefetcher, driven by a layer's parameters; the record
 * position for exact resume; counters reported at the end of a run.
 *
 * The net's options (cg_net_options; the CLI and Python fill them from
 * CAFFEGRID_SKIP_BAD_RECORDS and CAFFEGRID_DATA_THREADS):
 *   skip_bad_records  a record that cannot be read or decoded is logged, counted and
 *                     replaced (see prefetch.h) instead of failing the run; the count
 *                     is reported at the end.
 *   data_threads      background threads per data layer (0: the default, 1; -1: read
 *                     synchronously in forward). Results do not depend on it. */
#ifndef CG_DATA_FEED_H
#define CG_DATA_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include "core/layer.h"
#include "caffegrid/prefetch.h"
#include "caffegrid/source.h"
#include "data/transform.h"

typedef struct cg_data_feed_config {
  const char *source_type; /* "lmdb", "image_list" */
  const char *location;
  const void *options; /* borrowed until cg_data_feed_close */
  int batch_size;
  bool shuffle;
  uint32_t rand_skip;  /* start at a random position in [0, rand_skip] */
  int depth;           /* batches prepared ahead */
  cg_color_mode color; /* overrides transform_param's force_color/force_gray when not NATIVE */
  int resize_h, resize_w;
  bool rank_share; /* the source is this rank's share alone (see cg_prefetch_config) */
} cg_data_feed_config;

typedef struct cg_data_feed {
  const char *layer_name;
  cg_source *source;
  cg_transform transform;
  cg_prefetch *prefetch;
  cg_prefetch_config pcfg;
  cg_prefetch_stats carried; /* counters of prefetchers replaced by a seek */
  const cg_batch *last;      /* the batch last handed to the layer */
  char **ids;                /* its record ids, owned */
  int num_ids;
} cg_data_feed;

/* Opens the source, reads the first record for the item shape, and starts
 * prefetching. Rank and world size come from l->net (0 and 1 without a net); the
 * seed from l->rng, which is left untouched (so a restored RNG gives the same seed). */
int cg_data_feed_open(cg_layer *l, const cg_data_feed_config *config, cg_data_feed **out);
/* The next batch into data[batch x C x H x W] and labels[batch] (labels may be NULL). */
int cg_data_feed_next(cg_data_feed *f, float *data, float *labels);
void cg_data_feed_shape(const cg_data_feed *f, int *batch, int *channels, int *height, int *width);
uint64_t cg_data_feed_position(const cg_data_feed *f);
/* Continues at `position`, with the seed re-derived from l->rng (restored by resume). */
int cg_data_feed_seek(cg_data_feed *f, cg_layer *l, uint64_t position);
/* Logs the skipped-record count and data wait, stops the threads, frees. NULL is a no-op. */
void cg_data_feed_close(cg_data_feed *f);

/* The records of the last batch: ids (borrowed until the next call) and, in an
 * exact pass, whether each row is a real record (false: a repeat filling the batch). */
int cg_data_feed_batch_ids(cg_data_feed *f, const char **ids, bool *valid, int max);
/* How many records this rank reads per epoch (per pass, in an exact pass). */
size_t cg_data_feed_rank_records(const cg_data_feed *f);

/* Counters so far: seconds the net waited for data, batches, skipped bad records. */
cg_prefetch_stats cg_data_feed_stats(const cg_data_feed *f);

#endif
