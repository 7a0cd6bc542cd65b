/* Data pipeline throughput: decode + transform of the test images (ImageNet-style:
 * resize 256x256, random 227 crop, mirror) through the prefetcher with 0 (in the
 * caller), 1 and 2 threads; the same from an LMDB of encoded JPEGs; and LMDB reads
 * (raw records, and raw Datum -> floats). Prints markdown table rows.
 *   data_throughput SHARED_DATA ENCODED_LMDB */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caffegrid/error.h"
#include "caffegrid/prefetch.h"
#include "caffegrid/source.h"
#include "caffegrid/transform.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
  fprintf(stderr, "data_throughput: %s: %s\n", what, cg_error_message());
  exit(1);
}

/* Items per second through a prefetcher (best of 3 runs of `batches` batches). */
static double pipeline(cg_source *s, const cg_transform *t, int c, int h, int w, int threads, int batches, int bs) {
  double best = 0;
  for (int run = 0; run < 3; run++) {
    cg_prefetch_config pc = {.source = s,
                             .transform = t,
                             .batch_size = bs,
                             .channels = c,
                             .height = h,
                             .width = w,
                             .rank = 0,
                             .world = 1,
                             .seed = 1,
                             .threads = threads,
                             .depth = 4};
    double t0 = now();
    cg_prefetch *p;
    if (cg_prefetch_create(&pc, 0, &p)) die("prefetch");
    for (int i = 0; i < batches; i++) {
      const cg_batch *b;
      if (cg_prefetch_next(p, &b)) die("batch");
    }
    double rate = (double)batches * bs / (now() - t0);
    cg_prefetch_free(p);
    if (rate > best) best = rate;
  }
  return best;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: data_throughput SHARED_DATA ENCODED_LMDB\n");
    return 2;
  }
  char list[2048], root[2048], lmdb[2048];
  snprintf(list, sizeof list, "%s/images/images_list.txt", argv[1]);
  snprintf(root, sizeof root, "%s/images/", argv[1]);
  snprintf(lmdb, sizeof lmdb, "%s/caffe_ref/lmdb_jnulzl_32x32/test_lmdb", argv[1]);

  cg_transform_options tp = {.crop_size = 227, .mirror = true, .scale = 1.0f / 255};
  cg_transform_options resized = tp;
  resized.color = CG_COLOR_BGR, resized.resize_height = 256, resized.resize_width = 256;
  cg_transform *t;
  if (cg_transform_new(&resized, true, &t)) die("transform");

  cg_image_list_options o = {.root_folder = root};
  cg_source *images;
  if (cg_source_open("image_list", list, &o, &images)) die(list);
  for (int threads = 0; threads <= 2; threads++)
    printf(
        "| JPEG/PNG files (26 test images, 120x160 to 576x768) -> resize 256x256, crop 227, mirror | %d%s | %.0f |\n",
        threads, threads ? "" : " (caller)", pipeline(images, t, 3, 227, 227, threads, 24, 13));
  cg_source_close(images);

  cg_transform *te;
  if (cg_transform_new(&tp, true, &te)) die("transform");
  cg_source *enc;
  if (cg_source_open("lmdb", argv[2], NULL, &enc)) die(argv[2]);
  for (int threads = 0; threads <= 2; threads++)
    printf("| LMDB of encoded JPEG Datum (256x256, quality 95) -> decode, crop 227, mirror | %d%s | %.0f |\n", threads,
           threads ? "" : " (caller)", pipeline(enc, te, 3, 227, 227, threads, 40, 13));
  cg_source_close(enc);

  cg_source *db;
  if (cg_source_open("lmdb", lmdb, NULL, &db)) die(lmdb);
  size_t n = cg_source_count(db), bytes = 0;
  int rounds = 2000;
  double t0 = now();
  for (int r = 0; r < rounds; r++)
    for (size_t i = 0; i < n; i++) {
      cg_record rec;
      if (cg_source_get(db, i, &rec)) die("get");
      bytes += rec.num_bytes;
    }
  double dt = now() - t0;
  printf("| LMDB random-access get: key lookup, value read in place (3x32x32 Datum, %.0f MB/s) | 0 (caller) | %.0f |\n",
         bytes / dt / 1e6, (double)rounds * n / dt);
  cg_transform *plain;
  cg_transform_options scaled = {.scale = 1.0f / 255};
  if (cg_transform_new(&scaled, true, &plain)) die("transform");
  for (int threads = 0; threads <= 2; threads++)
    printf("| LMDB Datum (3x32x32 raw) -> floats, scaled | %d%s | %.0f |\n", threads, threads ? "" : " (caller)",
           pipeline(db, plain, 3, 32, 32, threads, 400, 100));
  cg_source_close(db);
  cg_transform_delete(t);
  cg_transform_delete(te);
  cg_transform_delete(plain);
  return 0;
}
