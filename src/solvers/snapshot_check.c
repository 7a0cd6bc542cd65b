/* Snapshot sets verified by length, CRC-32 and net fingerprint (snapshot_check.h). */
#include "solvers/snapshot_check.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "caffegrid/error.h"

int cg_file_sum_of(const char *path, cg_file_sum *out) {
  *out = (cg_file_sum){0, (uint32_t)crc32(0L, Z_NULL, 0)};
  FILE *f = fopen(path, "rb");
  if (!f) return cg_error(CG_ERR_IO, "cannot open '%s' to check it", path);
  unsigned char buf[1 << 16];
  size_t n;
  uLong crc = crc32(0L, Z_NULL, 0);
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    crc = crc32(crc, buf, (uInt)n);
    out->bytes += n;
  }
  int err = ferror(f);
  fclose(f);
  if (err) return cg_error(CG_ERR_IO, "cannot read '%s' to check it", path);
  out->crc = (uint32_t)crc;
  return CG_OK;
}

static uint64_t mix(uint64_t h, const void *p, size_t n) { /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ULL;
  return h;
}

uint64_t cg_net_fingerprint(const cg_net *net) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int i = 0; i < cg_net_num_layers(net); i++) {
    int params = cg_net_layer_num_params(net, i);
    if (!params) continue;
    const char *name = cg_net_layer_name(net, i);
    h = mix(h, name, strlen(name) + 1);
    for (int j = 0; j < params; j++) {
      const cg_blob *b = cg_net_layer_param(net, i, j);
      h = mix(h, &b->num_axes, sizeof b->num_axes);
      h = mix(h, b->shape, sizeof b->shape[0] * (size_t)b->num_axes);
    }
  }
  return h;
}

void cg_snapshot_sums_write(FILE *f, uint64_t fingerprint, const cg_file_sum *model, const cg_file_sum *state) {
  fprintf(f, "net %016" PRIx64 "\ncaffemodel %" PRIu64 " %08" PRIx32 "\nsolverstate %" PRIu64 " %08" PRIx32 "\n",
          fingerprint, model->bytes, model->crc, state->bytes, state->crc);
}

/* The run-state file's header and sums; version 2 files have none (*has_sums false). */
static int read_sums(const char *path, bool *has_sums, uint64_t *fingerprint, cg_file_sum *model, cg_file_sum *state) {
  *has_sums = false;
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int version = 0, iter, ranks;
  size_t words;
  int ok = fscanf(f, "caffegrid-run-state %d iter %d ranks %d words %zu", &version, &iter, &ranks, &words) == 4;
  if (ok && version >= 3)
    ok = fscanf(f, " net %" SCNx64 " caffemodel %" SCNu64 " %" SCNx32 " solverstate %" SCNu64 " %" SCNx32, fingerprint,
                &model->bytes, &model->crc, &state->bytes, &state->crc) == 5;
  fclose(f);
  if (!ok) return -1;
  *has_sums = version >= 3;
  return 0;
}

bool cg_snapshot_set_verified(const char *stem, bool check_net, uint64_t fingerprint, char *why, size_t why_len) {
  char path[4096];
  snprintf(path, sizeof path, "%s.cgstate", stem);
  bool has_sums;
  uint64_t net;
  cg_file_sum want[2], got;
  if (read_sums(path, &has_sums, &net, &want[0], &want[1]) != 0) {
    snprintf(why, why_len, "its run-state file '%s' is unreadable or damaged", path);
    return false;
  }
  if (!has_sums) return true;
  if (check_net && net != fingerprint) {
    snprintf(why, why_len, "it is of another net (its layers' parameters differ from this net's)");
    return false;
  }
  const char *ext[2] = {".caffemodel", ".solverstate"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s%s", stem, ext[i]);
    if (cg_file_sum_of(path, &got) != CG_OK) {
      snprintf(why, why_len, "'%s' cannot be read", path);
      return false;
    }
    if (got.bytes != want[i].bytes || got.crc != want[i].crc) {
      snprintf(why, why_len, "'%s' is not the file written with it (%" PRIu64 " bytes, CRC-32 %08" PRIx32
               "; written: %" PRIu64 " bytes, %08" PRIx32 ")",
               path, got.bytes, got.crc, want[i].bytes, want[i].crc);
      return false;
    }
  }
  return true;
}
