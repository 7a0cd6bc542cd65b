/* The records file (a task's local copy of its rows) and MemoryData layers fed from
 * a source: every record kind round-trips; damaged files are refused by name; a
 * MemoryData layer reading a records file gives the Data layer's batches over an
 * LMDB of the same records (crops, mirrors and means drawn alike), also for one
 * rank's share of two; the read position resumes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/caffe_files.h"
#include "caffegrid/error.h"
#include "caffegrid/feed.h"
#include "caffegrid/lmdb_writer.h"
#include "caffegrid/net.h"
#include "caffegrid/records_file.h"
#include "caffegrid/source.h"
#include "check.h"

static char dir[] = "/tmp/cg_test_records_XXXXXX";
enum { N = 12, C = 3, H = 10, W = 10 };
static uint8_t pixels[N][C * H * W];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void test_round_trip(void) {
  char path[512];
  path_of(path, sizeof path, "kinds.rec");
  cg_records_writer *w;
  CHECK_EQ_INT(cg_records_writer_open(path, &w), 0);
  static const uint8_t image[5] = {0xff, 0xd8, 0xff, 1, 2};
  static const float values[6] = {1.5f, -2, 3, 4, 5, 6.25f};
  cg_record in[4] = {
      {.kind = CG_RECORD_PIXELS, .id = "row-0", .bytes = pixels[0], .num_bytes = C * H * W, .channels = C,
       .height = H, .width = W, .label = 3, .has_label = true},
      {.kind = CG_RECORD_IMAGE, .id = "row-1", .bytes = image, .num_bytes = 5, .label = 1, .has_label = true},
      {.kind = CG_RECORD_FLOATS, .id = "a longer id, with spaces", .floats = values, .num_floats = 6, .channels = 1,
       .height = 2, .width = 3},
      {.kind = CG_RECORD_DATUM, .id = NULL, .bytes = image, .num_bytes = 3},
  };
  for (int i = 0; i < 4; i++) CHECK_EQ_INT(cg_records_writer_add(w, &in[i]), 0);
  cg_record bad = {.kind = CG_RECORD_PIXELS, .id = "short", .bytes = pixels[0], .num_bytes = 7, .channels = C,
                   .height = H, .width = W};
  CHECK_EQ_INT(cg_records_writer_add(w, &bad), CG_ERR_SHAPE);
  CHECK_MSG(strstr(cg_error_message(), "record 'short' has 7 pixel bytes"), "%s", cg_error_message());
  CHECK(cg_records_writer_count(w) == 4);
  CHECK_EQ_INT(cg_records_writer_close(w), 0);
  CHECK_EQ_INT(cg_records_writer_open(path, &w), CG_ERR_IO); /* never overwritten */

  cg_source *s;
  CHECK_EQ_INT(cg_source_open("records", path, NULL, &s), 0);
  if (!s) return;
  CHECK(cg_source_count(s) == 4);
  cg_record r;
  CHECK_EQ_INT(cg_source_get(s, 0, &r), 0);
  CHECK(r.kind == CG_RECORD_PIXELS && strcmp(r.id, "row-0") == 0 && r.label == 3 && r.has_label &&
        r.channels == C && r.height == H && r.width == W && r.num_bytes == C * H * W &&
        memcmp(r.bytes, pixels[0], C * H * W) == 0);
  CHECK_EQ_INT(cg_source_get(s, 1, &r), 0);
  CHECK(r.kind == CG_RECORD_IMAGE && strcmp(r.id, "row-1") == 0 && r.num_bytes == 5 && memcmp(r.bytes, image, 5) == 0);
  CHECK_EQ_INT(cg_source_get(s, 2, &r), 0);
  CHECK(r.kind == CG_RECORD_FLOATS && strcmp(r.id, "a longer id, with spaces") == 0 && r.num_floats == 6 &&
        memcmp(r.floats, values, sizeof values) == 0 && !r.has_label && r.height == 2 && r.width == 3);
  CHECK_EQ_INT(cg_source_get(s, 3, &r), 0);
  CHECK(r.kind == CG_RECORD_DATUM && strcmp(r.id, "") == 0 && r.num_bytes == 3);
  CHECK_EQ_INT(cg_source_get(s, 4, &r), CG_ERR_INVALID);
  cg_source_close(s);

  /* cut short, or not one at all: refused when opened, naming the file */
  FILE *f = fopen(path, "rb");
  char buf[4096];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  char cut[512];
  path_of(cut, sizeof cut, "cut.rec");
  f = fopen(cut, "wb");
  fwrite(buf, 1, n - 9, f);
  fclose(f);
  CHECK_EQ_INT(cg_source_open("records", cut, NULL, &s), CG_ERR_CORRUPT);
  CHECK_MSG(strstr(cg_error_message(), "damaged or cut short") && strstr(cg_error_message(), cut), "%s",
            cg_error_message());
  f = fopen(cut, "wb");
  fputs("path label\nother 1\n", f);
  fclose(f);
  CHECK_EQ_INT(cg_source_open("records", cut, NULL, &s), CG_ERR_CORRUPT);
  CHECK_MSG(strstr(cg_error_message(), "is not a caffegrid records file"), "%s", cg_error_message());
  /* an index entry pointing outside the records: refused when that record is read */
  memcpy(buf + n - 24 - 8, &(uint64_t){1 << 20}, 8);
  f = fopen(cut, "wb");
  fwrite(buf, 1, n, f);
  fclose(f);
  CHECK_EQ_INT(cg_source_open("records", cut, NULL, &s), 0);
  if (s) {
    CHECK_EQ_INT(cg_source_get(s, 3, &r), CG_ERR_CORRUPT);
    cg_source_close(s);
  }
}

static const char transform[] = "transform_param { crop_size: 8 mirror: true mean_value: 100 mean_value: 110 "
                                "mean_value: 120 scale: 0.5 }";

static cg_net *net_of(const char *name, const char *layer, int phase, int rank, int world) {
  char path[512], text[1024];
  path_of(path, sizeof path, name);
  snprintf(text, sizeof text, "name: 'n' layer { name: 'd' %s top: 'data' top: 'label' %s }", layer, transform);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  cg_net_options o = {.phase = phase, .rank = rank, .world_size = world, .seed = 5, .data_threads = 2};
  cg_net *net = NULL;
  int rc = cg_net_create_from_file(path, &o, &net);
  CHECK_MSG(rc == 0, "%s: %s", name, cg_error_message());
  return net;
}

/* batches of two nets are equal, bit for bit, for `iterations` forwards */
static void same_batches(cg_net *a, cg_net *b, int iterations, const char *what) {
  if (!a || !b) return;
  int differing = 0;
  for (int it = 0; it < iterations; it++) {
    CHECK_EQ_INT(cg_net_forward(a, NULL), 0);
    CHECK_EQ_INT(cg_net_forward(b, NULL), 0);
    cg_blob *da = cg_net_blob(a, "data"), *db = cg_net_blob(b, "data");
    cg_blob *la = cg_net_blob(a, "label"), *lb = cg_net_blob(b, "label");
    if (da->count != db->count || memcmp(da->data, db->data, da->count * sizeof(float)) ||
        memcmp(la->data, lb->data, la->count * sizeof(float)))
      differing++;
  }
  CHECK_MSG(differing == 0, "%s: %d of %d batches differ", what, differing, iterations);
}

static void test_memory_data_reads_like_the_data_layer(void) {
  char lmdb[512], all[512], share[512];
  path_of(lmdb, sizeof lmdb, "db");
  path_of(all, sizeof all, "all.rec");
  path_of(share, sizeof share, "share1.rec");
  cg_lmdb_writer *lw;
  cg_records_writer *rw, *sw;
  CHECK_EQ_INT(cg_lmdb_writer_open(lmdb, &lw), 0);
  CHECK_EQ_INT(cg_records_writer_open(all, &rw), 0);
  CHECK_EQ_INT(cg_records_writer_open(share, &sw), 0);
  for (int i = 0; i < N; i++) {
    char key[16];
    snprintf(key, sizeof key, "%08d", i);
    cg_datum d = {.channels = C, .height = H, .width = W, .label = i % 5, .has_label = true, .data = pixels[i],
                  .data_len = C * H * W};
    uint8_t *packed;
    size_t len;
    CHECK_EQ_INT(cg_datum_pack(&d, &packed, &len), 0);
    CHECK_EQ_INT(cg_lmdb_writer_put(lw, key, strlen(key), packed, len), 0);
    free(packed);
    cg_record r = {.kind = CG_RECORD_PIXELS, .id = key, .bytes = pixels[i], .num_bytes = C * H * W, .channels = C,
                   .height = H, .width = W, .label = (float)(i % 5), .has_label = true};
    CHECK_EQ_INT(cg_records_writer_add(rw, &r), 0);
    if (i % 2 == 1) CHECK_EQ_INT(cg_records_writer_add(sw, &r), 0); /* rank 1's share of 2 */
  }
  CHECK_EQ_INT(cg_lmdb_writer_close(lw), 0);
  CHECK_EQ_INT(cg_records_writer_close(rw), 0);
  CHECK_EQ_INT(cg_records_writer_close(sw), 0);
  char data_layer[700];
  snprintf(data_layer, sizeof data_layer, "type: 'Data' data_param { source: '%s' batch_size: 4 backend: LMDB }", lmdb);
  const char *memory_layer = "type: 'MemoryData' memory_data_param { batch_size: 4 channels: 3 height: 8 width: 8 }";

  /* one rank, TRAIN (random crops and mirrors), three epochs */
  cg_net *a = net_of("a.prototxt", data_layer, 0, 0, 1), *b = net_of("b.prototxt", memory_layer, 0, 0, 1);
  if (b) CHECK_EQ_INT(cg_net_feed_source(b, NULL, "records", all, NULL), 0);
  same_batches(a, b, 9, "one rank, TRAIN");
  /* the position resumes: b restarts at a's state */
  if (a && b) {
    size_t words = cg_net_state_words(a);
    uint64_t *state = calloc(words, sizeof *state);
    cg_net_get_state(a, state);
    cg_net *c = net_of("c.prototxt", memory_layer, 0, 0, 1);
    if (c) {
      CHECK_EQ_INT(cg_net_set_state(c, state, words), 0); /* before the source: applied when it is attached */
      CHECK_EQ_INT(cg_net_feed_source(c, NULL, "records", all, NULL), 0);
      same_batches(a, c, 4, "resumed");
    }
    cg_net_free(c);
    free(state);
  }
  cg_net_free(a);
  cg_net_free(b);

  /* rank 1 of 2: the whole LMDB shared by the partition, or the rank's own share */
  a = net_of("a1.prototxt", data_layer, 0, 1, 2);
  b = net_of("b1.prototxt", memory_layer, 0, 1, 2);
  cg_net *whole = net_of("w1.prototxt", memory_layer, 0, 1, 2);
  if (b) CHECK_EQ_INT(cg_net_feed_source(b, NULL, "records", share, &(cg_feed_source_options){.rank_share = true}), 0);
  if (whole) CHECK_EQ_INT(cg_net_feed_source(whole, NULL, "records", all, NULL), 0);
  same_batches(a, b, 6, "rank 1 of 2, its share");
  cg_net_free(a);
  a = net_of("a2.prototxt", data_layer, 0, 1, 2);
  same_batches(a, whole, 6, "rank 1 of 2, the whole file");
  if (b) {
    const char *ids[4];
    bool valid[4];
    CHECK_EQ_INT(cg_net_batch_ids(b, ids, valid, 4), 4);
    CHECK(strcmp(ids[0], "00000001") == 0 || strcmp(ids[0], "00000009") == 0 || strcmp(ids[0], "00000005") == 0);
  }
  cg_net_free(a);
  cg_net_free(b);
  cg_net_free(whole);

  /* a shape the layer does not take is refused, naming the layer and both shapes */
  cg_net *wrong = net_of("wrong.prototxt",
                         "type: 'MemoryData' memory_data_param { batch_size: 4 channels: 1 height: 10 width: 10 }", 1, 0, 1);
  if (wrong) {
    CHECK_EQ_INT(cg_net_feed_source(wrong, NULL, "records", all, NULL), CG_ERR_SHAPE);
    CHECK_MSG(strstr(cg_error_message(), "layer 'd'") && strstr(cg_error_message(), "3x8x8") &&
                  strstr(cg_error_message(), "1x8x8"),
              "%s", cg_error_message());
  }
  cg_net_free(wrong);
}

/* a NaN among a record's values is refused, naming the record; skip mode skips it */
static void test_nonfinite_values_are_refused(void) {
  char path[512], net_path[512];
  path_of(path, sizeof path, "nan.rec");
  path_of(net_path, sizeof net_path, "nan.prototxt");
  cg_records_writer *w;
  CHECK_EQ_INT(cg_records_writer_open(path, &w), 0);
  float values[4][4];
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 4; k++) values[i][k] = (float)(i + k);
  values[2][3] = NAN;
  for (int i = 0; i < 4; i++) {
    char id[16];
    snprintf(id, sizeof id, "row-%d", i);
    cg_record r = {.kind = CG_RECORD_FLOATS, .id = id, .floats = values[i], .num_floats = 4, .channels = 1,
                   .height = 2, .width = 2, .label = 1, .has_label = true};
    CHECK_EQ_INT(cg_records_writer_add(w, &r), 0);
  }
  CHECK_EQ_INT(cg_records_writer_close(w), 0);
  FILE *f = fopen(net_path, "w");
  fputs("layer { name: 'd' type: 'MemoryData' top: 'data' top: 'label' memory_data_param { batch_size: 4 "
        "channels: 1 height: 2 width: 2 } }", f);
  fclose(f);
  for (int skip = 0; skip < 2; skip++) {
    cg_net_options o = {.phase = 1, .world_size = 1, .data_threads = -1, .skip_bad_records = skip,
                        .max_bad_fraction = 0.5}; /* 1 of the 4 rows is bad */
    cg_net *net = NULL;
    CHECK_EQ_INT(cg_net_create_from_file(net_path, &o, &net), 0);
    if (!net) continue;
    int rc = cg_net_feed_source(net, NULL, "records", path, NULL);
    if (!rc) rc = cg_net_forward(net, NULL);
    if (skip) {
      CHECK_MSG(rc == 0, "skip mode: %s", cg_error_message());
      cg_blob *data = cg_net_blob(net, "data");
      for (size_t i = 0; i < data->count; i++) CHECK(isfinite(data->data[i]));
    } else {
      CHECK(rc == CG_ERR_CORRUPT);
      CHECK_MSG(strstr(cg_error_message(), "row-2") && strstr(cg_error_message(), "NaN"), "%s", cg_error_message());
    }
    cg_net_free(net);
  }
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("test_records: temporary folder");
    return 1;
  }
  for (int i = 0; i < N; i++)
    for (int k = 0; k < C * H * W; k++) pixels[i][k] = (uint8_t)((i * 37 + k * 11 + (k / 7) * 5) % 256);
  test_round_trip();
  test_memory_data_reads_like_the_data_layer();
  test_nonfinite_values_are_refused();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "test_records: could not remove %s\n", dir);
  return CHECK_REPORT();
}
