/* Snapshot sets that prove themselves: the run-state file (.cgstate, version 3)
 * records the byte length and CRC-32 of the .caffemodel and .solverstate it was
 * written with, and a fingerprint of the net (its learnable blobs' layers and
 * shapes). Restoring checks them; `-snapshot auto` takes the newest set that
 * passes, saying which it skipped and why. */
#ifndef CG_SOLVERS_SNAPSHOT_CHECK_H
#define CG_SOLVERS_SNAPSHOT_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "caffegrid/net.h"

typedef struct cg_file_sum {
  uint64_t bytes;
  uint32_t crc;
} cg_file_sum;

/* Length and CRC-32 of a whole file. */
int cg_file_sum_of(const char *path, cg_file_sum *out);
/* The net's learnable blobs (their layers' names and shapes), hashed. */
uint64_t cg_net_fingerprint(const cg_net *net);

/* Writes and parses the version-3 lines ("net", "caffemodel", "solverstate"). */
void cg_snapshot_sums_write(FILE *f, uint64_t fingerprint, const cg_file_sum *model, const cg_file_sum *state);
/* Checks the set of `stem` (STEM.caffemodel/.solverstate/.cgstate) against its
 * run-state file and, with check_net, the net's fingerprint (a set named explicitly
 * is left to the detailed shape checks of restore, whose messages say more). True
 * when it passes (also for an older run-state file without sums: nothing to check);
 * false with `why` filled otherwise. */
bool cg_snapshot_set_verified(const char *stem, bool check_net, uint64_t fingerprint, char *why, size_t why_len);

#endif
