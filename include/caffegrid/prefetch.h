/* Whole batches prepared ahead of the net by background threads: each batch is
 * read from a source through a rank partition, decoded and transformed into floats,
 * with its labels and record indices.
 *
 * Results never depend on threads or timing: a batch's records follow from its
 * position alone (partition.h), and every record draws its crop and mirror from an
 * RNG seeded by (seed, rank, the record's position). So threads = 0 (read in the
 * caller's thread), 1 or more, and any depth, give the same batches bit for bit,
 * and a run restarted at a saved position continues exactly.
 *
 * Bad records: by default a record that cannot be read or decoded fails the batch,
 * and the error (with its message naming the record) comes out of the next
 * cg_prefetch_next. With skip_bad, it is logged and counted instead, and its slot in
 * the batch gets a copy of another record of the same batch (the batch keeps its
 * size and the positions stay fixed, so resume stays exact); a batch with no good
 * record at all is still an error. */
#ifndef CAFFEGRID_PREFETCH_H
#define CAFFEGRID_PREFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "caffegrid/source.h"
#include "caffegrid/transform.h"
#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef struct cg_batch {
  float *data;       /* size x channels x height x width */
  float *labels;     /* size */
  size_t *indices;   /* size: the source index of each item (the record it came from) */
  uint64_t position; /* partition position of item 0 */
  int size;
  int skipped; /* bad records replaced in this batch */
} cg_batch;

typedef struct cg_prefetch_config {
  cg_source *source;             /* borrowed; each background thread reads through its own clone */
  const cg_transform *transform; /* borrowed, read-only */
  int batch_size;
  int channels, height, width; /* shape of one transformed item; another shape is an error */
  int rank, world;             /* partition */
  /* The source holds only this rank's share (records r, r+W, ... of the whole, in
   * order: a Spark task's copy of its rows): it is read as by a single rank, while
   * every record still draws its crop and mirror as rank `rank` draws them, so the
   * batches equal those of rank r reading the whole source (N a multiple of W). */
  bool rank_share;
  bool shuffle;                /* reshuffle every epoch (partition.h) */
  bool exact;                  /* one exact pass over this rank's records (cg_partition_exact) */
  uint64_t seed;               /* shuffles, crops and mirrors; the same on every rank */
  int threads;                 /* background threads; 0 = synchronous */
  int depth;                   /* batches prepared ahead (>= 1; Caffe's prefetch, default 4) */
  bool skip_bad;               /* count bad records instead of failing... */
  double max_bad_fraction;     /* ...unless more than this fraction of those read are bad (0: 0.1; 1: no limit) */
} cg_prefetch_config;

typedef struct cg_prefetch_stats {
  double wait_seconds; /* time cg_prefetch_next spent waiting for a batch (all the reading, when synchronous) */
  uint64_t batches;    /* batches handed out */
  uint64_t skipped;    /* bad records replaced */
} cg_prefetch_stats;

typedef struct cg_prefetch cg_prefetch;

/* Starts at partition position `position`. The config is copied; source and
 * transform must outlive the prefetcher. */
int cg_prefetch_create(const cg_prefetch_config *config, uint64_t position, cg_prefetch **out);
/* The next batch, in order; blocks until it is ready. The batch is borrowed until
 * the next call. An error in preparing it is returned here, with its message. */
int cg_prefetch_next(cg_prefetch *p, const cg_batch **out);
/* Position after the batches handed out so far (what a snapshot saves). */
uint64_t cg_prefetch_position(const cg_prefetch *p);
/* Drops what was prepared and continues from `position`. */
int cg_prefetch_seek(cg_prefetch *p, uint64_t position);
cg_prefetch_stats cg_prefetch_get_stats(const cg_prefetch *p);
/* Stops the threads and frees everything; NULL is a no-op. */
void cg_prefetch_free(cg_prefetch *p);

/* The RNG seed of the record at `position` (exposed for tests). */
uint64_t cg_prefetch_record_seed(uint64_t seed, int rank, uint64_t position);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
