/* Batch prefetching with pthreads. Batches are numbered from the start position;
 * batch b lives in slot b mod (depth + 1) and is filled by whichever thread takes it
 * next; the consumer takes them strictly in order. One slot is the batch the net
 * holds, the others are prepared ahead. Every thread reads through its own source
 * clone and partition copy, so they share nothing but the slot bookkeeping. */
#include "caffegrid/prefetch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "data/partition.h"

typedef enum { SLOT_FREE, SLOT_FILLING, SLOT_READY } slot_state;

typedef struct slot {
  cg_batch batch;
  uint64_t number;
  slot_state state;
  int rc;
  char message[1024];
} slot;

typedef struct worker {
  cg_prefetch *p;
  cg_source *source;
  cg_partition part;
  cg_pixels px;
  bool *good;
  pthread_t thread;
  bool running;
} worker;

struct cg_prefetch {
  cg_prefetch_config cfg;
  size_t item; /* floats per item */
  int num_slots;
  slot *slots;
  int num_workers;
  worker *workers;
  pthread_mutex_t mu;
  pthread_cond_t ready, space;
  uint64_t start;     /* position of batch 0 */
  uint64_t next_fill; /* next batch number a thread takes */
  uint64_t handed;    /* batches handed to the consumer */
  bool holding;       /* the consumer holds batch handed - 1 */
  bool stop;
  cg_prefetch_stats stats;
};

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t cg_prefetch_record_seed(uint64_t seed, int rank, uint64_t position) {
  uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
  h = mix64(h ^ ((uint64_t)(unsigned)rank * 0xd6e8feb86659fd93ULL));
  return mix64(h ^ (position + 0x632be59bd9b4e019ULL));
}

/* One item: record `index` at partition position `pos` into dst. */
static int load_item(cg_prefetch *p, worker *w, size_t index, uint64_t pos, float *dst, float *label) {
  const cg_prefetch_config *c = &p->cfg;
  cg_record rec;
  int rc = cg_source_get(w->source, index, &rec);
  if (rc) return rc;
  char where[512];
  snprintf(where, sizeof where, "'%.300s' in %.200s", rec.id ? rec.id : "?", cg_source_location(w->source));
  rc = cg_transform_load(c->transform, &rec, &w->px, where);
  if (rc) return rc;
  int oh, ow;
  cg_transform_out_shape(c->transform, w->px.channels, w->px.height, w->px.width, &oh, &ow);
  if (w->px.channels != c->channels || oh != c->height || ow != c->width)
    return cg_error(CG_ERR_SHAPE, "record %s is %dx%dx%d (%dx%dx%d after cropping); the first record gave %dx%dx%d",
                    where, w->px.channels, w->px.height, w->px.width, w->px.channels, oh, ow, c->channels, c->height,
                    c->width);
  cg_rng rng;
  cg_rng_seed(&rng, cg_prefetch_record_seed(c->seed, c->rank, pos));
  rc = cg_transform_apply(c->transform, &w->px, dst, &rng, where);
  if (rc) return rc;
  *label = w->px.has_label ? w->px.label : 0;
  return CG_OK;
}

static int fill_batch(cg_prefetch *p, worker *w, uint64_t number, cg_batch *b) {
  int n = p->cfg.batch_size;
  b->position = p->start + number * (uint64_t)n;
  b->size = n;
  b->skipped = 0;
  int first_good = -1;
  for (int i = 0; i < n; i++) {
    uint64_t pos = b->position + (uint64_t)i;
    size_t index = cg_partition_index(&w->part, pos);
    b->indices[i] = index;
    int rc = load_item(p, w, index, pos, b->data + p->item * (size_t)i, &b->labels[i]);
    w->good[i] = rc == CG_OK;
    if (rc) {
      if (!p->cfg.skip_bad) return rc;
      CG_LOG_WARN("skipping a bad record (CAFFEGRID_SKIP_BAD_RECORDS): %s", cg_error_message());
      b->skipped++;
    } else if (first_good < 0) {
      first_good = i;
    }
  }
  if (!b->skipped) return CG_OK;
  if (first_good < 0) {
    char last[1024]; /* a copy: cg_error writes where cg_error_message points */
    snprintf(last, sizeof last, "%s", cg_error_message());
    return cg_error(CG_ERR_CORRUPT, "every record of the batch at position %llu of %s is bad; the last: %s",
                    (unsigned long long)b->position, cg_source_location(w->source), last);
  }
  int donor = first_good;
  for (int i = 0; i < n; i++) {
    if (w->good[i]) {
      donor = i;
      continue;
    }
    memcpy(b->data + p->item * (size_t)i, b->data + p->item * (size_t)donor, p->item * sizeof(float));
    b->labels[i] = b->labels[donor];
    b->indices[i] = b->indices[donor];
  }
  return CG_OK;
}

/* Skipping is for a few bad records: when more than max_bad_fraction of what this rank
 * has read is bad (judged once it has read 1,000 records, or all of its share), the
 * data are broken and training on the rest would be a silent wrong answer. */
static int check_bad_fraction(const cg_prefetch *p) {
  double limit = p->cfg.max_bad_fraction > 0 ? p->cfg.max_bad_fraction : 0.1;
  uint64_t read = p->stats.batches * (uint64_t)p->cfg.batch_size, bad = p->stats.skipped;
  uint64_t share = cg_source_count(p->cfg.source) / (p->cfg.rank_share ? 1 : (uint64_t)p->cfg.world);
  uint64_t enough = share < 1000 ? (share ? share : 1) : 1000;
  if (limit >= 1 || read < enough || (double)bad <= limit * (double)read) return CG_OK;
  return cg_error(CG_ERR_CORRUPT,
                  "%llu of the %llu records read so far from %s are bad, more than CAFFEGRID_MAX_BAD_FRACTION=%g "
                  "allows: the data are broken, not a few records (the warnings above name them)",
                  (unsigned long long)bad, (unsigned long long)read, cg_source_location(p->cfg.source), limit);
}

static void fill_slot(cg_prefetch *p, worker *w, slot *s) {
  s->rc = fill_batch(p, w, s->number, &s->batch);
  if (s->rc) snprintf(s->message, sizeof s->message, "%s", cg_error_message());
}

static void *worker_main(void *arg) {
  worker *w = arg;
  cg_prefetch *p = w->p;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    uint64_t released = p->handed - (p->holding ? 1 : 0);
    if (p->next_fill >= released + (uint64_t)p->num_slots) {
      pthread_cond_wait(&p->space, &p->mu);
      continue;
    }
    slot *s = &p->slots[p->next_fill % (uint64_t)p->num_slots];
    s->number = p->next_fill++;
    s->state = SLOT_FILLING;
    pthread_mutex_unlock(&p->mu);
    fill_slot(p, w, s);
    pthread_mutex_lock(&p->mu);
    s->state = SLOT_READY;
    pthread_cond_broadcast(&p->ready);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void stop_threads(cg_prefetch *p) {
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->space);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->num_workers; i++)
    if (p->workers[i].running) {
      pthread_join(p->workers[i].thread, NULL);
      p->workers[i].running = false;
    }
}

static int start_at(cg_prefetch *p, uint64_t position) {
  p->start = position;
  p->next_fill = p->handed = 0;
  p->holding = false;
  p->stop = false;
  for (int i = 0; i < p->num_slots; i++) p->slots[i].state = SLOT_FREE;
  if (p->cfg.threads == 0) return CG_OK;
  for (int i = 0; i < p->num_workers; i++) {
    if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
      stop_threads(p);
      return cg_error(CG_ERR_NOMEM, "cannot start a data prefetch thread");
    }
    p->workers[i].running = true;
  }
  return CG_OK;
}

void cg_prefetch_free(cg_prefetch *p) {
  if (!p) return;
  if (p->workers) {
    stop_threads(p);
    for (int i = 0; i < p->num_workers; i++) {
      worker *w = &p->workers[i];
      cg_source_close(w->source);
      cg_partition_free(&w->part);
      cg_pixels_free(&w->px);
      free(w->good);
    }
  }
  for (int i = 0; p->slots && i < p->num_slots; i++) {
    free(p->slots[i].batch.data);
    free(p->slots[i].batch.labels);
    free(p->slots[i].batch.indices);
  }
  free(p->slots);
  free(p->workers);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->ready);
  pthread_cond_destroy(&p->space);
  free(p);
}

int cg_prefetch_create(const cg_prefetch_config *config, uint64_t position, cg_prefetch **out) {
  *out = NULL;
  const cg_prefetch_config *c = config;
  if (c->batch_size <= 0 || c->channels <= 0 || c->height <= 0 || c->width <= 0)
    return cg_error(CG_ERR_INVALID, "prefetch: batch %d of %dx%dx%d", c->batch_size, c->channels, c->height, c->width);
  if (c->threads < 0 || c->depth < 1)
    return cg_error(CG_ERR_INVALID, "prefetch: %d threads, depth %d (need >= 0 and >= 1)", c->threads, c->depth);
  cg_prefetch *p = calloc(1, sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "out of memory");
  p->cfg = *c;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->ready, NULL);
  pthread_cond_init(&p->space, NULL);
  p->item = (size_t)c->channels * (size_t)c->height * (size_t)c->width;
  p->num_slots = c->threads == 0 ? 1 : c->depth + 1;
  p->num_workers = c->threads == 0 ? 1 : (c->threads < c->depth + 1 ? c->threads : c->depth + 1);
  p->slots = calloc((size_t)p->num_slots, sizeof *p->slots);
  p->workers = calloc((size_t)p->num_workers, sizeof *p->workers);
  int rc = p->slots && p->workers ? CG_OK : cg_error(CG_ERR_NOMEM, "out of memory");
  size_t n = (size_t)c->batch_size;
  for (int i = 0; !rc && i < p->num_slots; i++) {
    cg_batch *b = &p->slots[i].batch;
    b->data = malloc(n * p->item * sizeof(float));
    b->labels = malloc(n * sizeof(float));
    b->indices = malloc(n * sizeof(size_t));
    if (!b->data || !b->labels || !b->indices)
      rc = cg_error(CG_ERR_NOMEM, "out of memory for %d prefetch batches of %zu floats", p->num_slots, n * p->item);
  }
  for (int i = 0; !rc && i < p->num_workers; i++) {
    worker *w = &p->workers[i];
    w->p = p;
    w->good = malloc(n * sizeof(bool));
    if (!w->good) rc = cg_error(CG_ERR_NOMEM, "out of memory");
    if (!rc) rc = cg_source_clone(c->source, &w->source);
    if (!rc)
      rc = cg_partition_init(&w->part, cg_source_count(c->source), c->rank_share ? 0 : c->rank,
                             c->rank_share ? 1 : c->world, c->shuffle, c->seed);
    if (!rc && c->exact) cg_partition_exact(&w->part);
  }
  if (!rc) rc = start_at(p, position);
  if (rc) {
    cg_prefetch_free(p);
    return rc;
  }
  *out = p;
  return CG_OK;
}

int cg_prefetch_next(cg_prefetch *p, const cg_batch **out) {
  *out = NULL;
  double t0 = now_seconds();
  slot *s;
  if (p->cfg.threads == 0) {
    s = &p->slots[0];
    s->number = p->handed++;
    fill_slot(p, &p->workers[0], s);
  } else {
    pthread_mutex_lock(&p->mu);
    if (p->holding) {
      p->holding = false;
      pthread_cond_broadcast(&p->space);
    }
    uint64_t b = p->handed;
    s = &p->slots[b % (uint64_t)p->num_slots];
    while (!(s->state == SLOT_READY && s->number == b)) pthread_cond_wait(&p->ready, &p->mu);
    p->handed++;
    p->holding = true;
    pthread_mutex_unlock(&p->mu);
  }
  p->stats.wait_seconds += now_seconds() - t0;
  if (s->rc) return cg_error(s->rc, "%s", s->message);
  p->stats.batches++;
  p->stats.skipped += (uint64_t)s->batch.skipped;
  if (s->batch.skipped) {
    int rc = check_bad_fraction(p);
    if (rc) return rc;
  }
  *out = &s->batch;
  return CG_OK;
}

uint64_t cg_prefetch_position(const cg_prefetch *p) { return p->start + p->handed * (uint64_t)p->cfg.batch_size; }

int cg_prefetch_seek(cg_prefetch *p, uint64_t position) {
  stop_threads(p);
  return start_at(p, position);
}

cg_prefetch_stats cg_prefetch_get_stats(const cg_prefetch *p) { return p->stats; }
