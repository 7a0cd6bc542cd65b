/* Which records a rank reads, in which order, epoch after epoch.
 *
 * With N records and W ranks every rank reads floor(N/W) records per epoch, so
 * all ranks run the same number of iterations whatever N mod W. Epoch e's order is
 * the identity (or, when shuffling, a permutation drawn from (seed, e) alone, so it
 * is the same on every rank, run and machine), rotated left by e * (N mod W); rank r
 * takes the records at places r, r + W, r + 2W, ... of it, and the last N mod W
 * places are left out. The left-out records therefore ROTATE: each epoch drops a
 * different few, and over N / gcd(N, N mod W) epochs every record is dropped equally
 * often. Strided rather than contiguous shares keep every rank's labels mixed when a
 * database is sorted by label.
 *
 * A rank's progress is one number, its position: how many records it has read since
 * epoch 0 began. Position p is record number p mod floor(N/W) of epoch p / floor(N/W);
 * saving and restoring that uint64 resumes exactly. */
#ifndef CG_DATA_PARTITION_H
#define CG_DATA_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cg_partition {
  bool exact;      /* one pass over this rank's records, for scoring and features (cg_partition_exact) */
  size_t count;    /* N */
  int rank, world; /* r, W */
  bool shuffle;
  uint64_t seed;    /* shared by all ranks */
  size_t per_epoch; /* floor(N / W) */
  /* cache of one epoch's permutation (shuffle only) */
  uint32_t *perm;
  uint64_t perm_epoch;
  bool have_perm;
} cg_partition;

/* Errors when count < world (a rank would get nothing), rank is out of range, or
 * count exceeds 2^32 - 1 when shuffling. */
int cg_partition_init(cg_partition *p, size_t count, int rank, int world, bool shuffle, uint64_t seed);
void cg_partition_free(cg_partition *p);
/* Switches to one exact pass: rank r reads r, r+W, r+2W, ... < N (ceil((N-r)/W)
 * records, so ranks may differ by one), then wraps to its first record again.
 * No shuffle, nothing left out: every record is read by exactly one rank. */
void cg_partition_exact(cg_partition *p);
/* Records per epoch for this rank: floor(N / W), or ceil((N - r) / W) in an exact pass. */
size_t cg_partition_per_epoch(const cg_partition *p);
/* The source index this rank reads at `position`. Not thread-safe (it caches the
 * epoch's permutation): give each thread its own copy via cg_partition_init. */
size_t cg_partition_index(cg_partition *p, uint64_t position);

#endif
