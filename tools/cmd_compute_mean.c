/* caffegrid compute_mean DB [OUT.binaryproto]: Caffe's compute_image_mean. The mean
 * of every Datum in an LMDB (raw, float_data or encoded, decoded as stored), summed
 * in float in key order and divided by the count as Caffe does, so the result equals
 * Caffe's bit for bit; written as a BlobProto with the legacy 1 x C x H x W fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/caffe_files.h"
#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "caffegrid/source.h"
#include "caffegrid/transform.h"
#include "commands.h"
#include "flags.h"

static int compute_mean(const char *db, const char *out_path) {
  cg_source *src;
  int rc = cg_source_open("lmdb", db, NULL, &src);
  if (rc) return rc;
  cg_transform *t;
  rc = cg_transform_new(NULL, false, &t);
  if (rc) {
    cg_source_close(src);
    return rc;
  }
  cg_pixels px = {0};
  float *sum = NULL;
  size_t n = cg_source_count(src), size = 0;
  int c = 0, h = 0, w = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    cg_record rec;
    rc = cg_source_get(src, i, &rec);
    char where[512];
    if (!rc) {
      snprintf(where, sizeof where, "'%.300s' in %.200s", rec.id, db);
      rc = cg_transform_load(t, &rec, &px, where);
    }
    if (rc) break;
    if (i == 0) {
      c = px.channels, h = px.height, w = px.width;
      size = (size_t)c * h * w;
      sum = calloc(size, sizeof(float));
      if (!sum) rc = cg_error(CG_ERR_NOMEM, "out of memory");
      CG_LOG_INFO("Starting iteration");
    } else if (px.channels != c || px.height != h || px.width != w) {
      rc = cg_error(CG_ERR_SHAPE, "record %s is %dx%dx%d, the first record was %dx%dx%d (all must have one size)",
                    where, px.channels, px.height, px.width, c, h, w);
    }
    if (rc) break;
    if (px.is_float) {
      for (size_t k = 0; k < size; k++) sum[k] += px.floats[k];
    } else {
      for (size_t k = 0; k < size; k++) sum[k] += (float)px.img.data[k];
    }
    if ((i + 1) % 10000 == 0) CG_LOG_INFO("Processed %zu files.", i + 1);
  }
  if (!rc) {
    if (n % 10000 != 0) CG_LOG_INFO("Processed %zu files.", n);
    for (size_t k = 0; k < size; k++) sum[k] /= (float)n;
    if (out_path) {
      CG_LOG_INFO("Write to %s", out_path);
      rc = cg_mean_file_write(out_path, c, h, w, sum);
    }
    if (!rc) {
      CG_LOG_INFO("Number of channels: %d", c);
      size_t dim = (size_t)h * w;
      for (int ch = 0; ch < c; ch++) {
        float m = 0;
        for (size_t k = 0; k < dim; k++) m += sum[(size_t)ch * dim + k];
        CG_LOG_INFO("mean_value channel [%d]: %g", ch, (double)(m / (float)dim));
      }
    }
  }
  free(sum);
  cg_pixels_free(&px);
  cg_transform_delete(t);
  cg_source_close(src);
  return rc;
}

int cmd_compute_mean(int argc, char **argv) {
  cg_flag flags[] = {
      {"backend", NULL, false, "lmdb (the only one)"},
      {"help", NULL, true, "this help"},
      {NULL, NULL, false, NULL},
  };
  char *positional[8];
  int np = 0;
  if (argc > 8 || cg_flags_parse(argc, argv, flags, positional, &np, "compute_mean")) return 1;
  if (cg_flag_get(flags, "help")) {
    cg_flags_usage(flags, "compute_mean", "INPUT_DB [OUTPUT_FILE]");
    return 0;
  }
  if (np < 1 || np > 2) {
    cg_flags_usage(flags, "compute_mean", "INPUT_DB [OUTPUT_FILE]");
    return 1;
  }
  const char *backend = cg_flag_get(flags, "backend");
  if (backend && strcmp(backend, "lmdb") != 0) {
    fprintf(stderr, "caffegrid compute_mean: --backend=%s: only lmdb is supported\n", backend);
    return 1;
  }
  if (compute_mean(positional[0], np == 2 ? positional[1] : NULL)) {
    fprintf(stderr, "caffegrid compute_mean: %s\n", cg_error_message());
    return 1;
  }
  return 0;
}
