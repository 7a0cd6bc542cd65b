/* Rank partitioning and per-epoch shuffles (see partition.h for the rules). The
 * shuffle is Fisher-Yates driven by the project's xoshiro generator seeded from
 * (seed, epoch), so it is identical on every machine. */
#include "data/partition.h"

#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/rng.h"

int cg_partition_init(cg_partition *p, size_t count, int rank, int world, bool shuffle, uint64_t seed) {
  memset(p, 0, sizeof *p);
  if (world < 1 || rank < 0 || rank >= world)
    return cg_error(CG_ERR_INVALID, "rank %d of %d is not a valid rank", rank, world);
  if (count < (size_t)world)
    return cg_error(CG_ERR_INVALID, "%zu records cannot be shared among %d ranks (each needs at least one)", count,
                    world);
  if (shuffle && count > UINT32_MAX)
    return cg_error(CG_ERR_UNSUPPORTED, "shuffling %zu records: at most %u are supported", count, UINT32_MAX);
  p->count = count, p->rank = rank, p->world = world, p->shuffle = shuffle, p->seed = seed;
  p->per_epoch = count / (size_t)world;
  if (shuffle) {
    p->perm = malloc(count * sizeof *p->perm);
    if (!p->perm) return cg_error(CG_ERR_NOMEM, "out of memory for a shuffle of %zu records", count);
  }
  return CG_OK;
}

void cg_partition_free(cg_partition *p) {
  free(p->perm);
  p->perm = NULL;
  p->have_perm = false;
}

size_t cg_partition_per_epoch(const cg_partition *p) { return p->per_epoch; }

void cg_partition_exact(cg_partition *p) {
  p->exact = true;
  p->shuffle = false;
  p->per_epoch = (p->count - (size_t)p->rank + (size_t)p->world - 1) / (size_t)p->world;
}

static void make_perm(cg_partition *p, uint64_t epoch) {
  cg_rng rng;
  /* one generator per (seed, epoch); the odd constant keeps epoch 0 and seed 0 apart */
  cg_rng_seed(&rng, p->seed ^ (epoch + 1) * 0x9e3779b97f4a7c15ULL);
  for (size_t i = 0; i < p->count; i++) p->perm[i] = (uint32_t)i;
  for (size_t i = p->count - 1; i > 0; i--) {
    size_t j = (size_t)cg_rng_below(&rng, (uint64_t)i + 1);
    uint32_t t = p->perm[i];
    p->perm[i] = p->perm[j];
    p->perm[j] = t;
  }
  p->perm_epoch = epoch;
  p->have_perm = true;
}

size_t cg_partition_index(cg_partition *p, uint64_t position) {
  if (p->exact) return (size_t)p->rank + (size_t)p->world * (size_t)(position % p->per_epoch);
  uint64_t epoch = position / p->per_epoch, step = position % p->per_epoch;
  size_t n = p->count, left_over = n % (size_t)p->world;
  size_t rotation = (size_t)((unsigned __int128)(epoch % n) * left_over % n);
  size_t place = (size_t)(((unsigned __int128)step * (size_t)p->world + (size_t)p->rank + rotation) % n);
  if (!p->shuffle) return place;
  if (!p->have_perm || p->perm_epoch != epoch) make_perm(p, epoch);
  return p->perm[place];
}
