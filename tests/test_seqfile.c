/* SequenceFile reader and writer: the three real files in $SHARED_DATA/seqfile
 * (uncompressed, record- and block-compressed) read whole with exact counts and
 * spot-checked keys; cut and damaged copies fail with the file and byte named,
 * never crash; writer -> reader round trips in every compression mode; the
 * "seqfile" data source and its key/label convention. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "caffegrid/error.h"
#include "check.h"
#include "test_data.h"
#include "caffegrid/seqfile.h"
#include "data/seqfile_source.h"
#include "caffegrid/source.h"

static char shared[1024], tmpdir[256];

static const char *data_path(const char *rel) {
  static char buf[1200];
  snprintf(buf, sizeof buf, "%s/seqfile/%s", shared, rel);
  return buf;
}

static uint8_t *read_whole(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *buf = malloc((size_t)n + 1);
  *len = fread(buf, 1, (size_t)n, fp);
  fclose(fp);
  return buf;
}

static void write_whole(const char *path, const uint8_t *p, size_t n) {
  FILE *fp = fopen(path, "wb");
  if (n) fwrite(p, 1, n, fp);
  fclose(fp);
}

static bool hex_equal(const uint8_t *bytes, const char *hex) {
  for (size_t i = 0; hex[2 * i]; i++) {
    unsigned v;
    sscanf(hex + 2 * i, "%2x", &v);
    if (bytes[i] != v) return false;
  }
  return true;
}

static bool contains(const uint8_t *p, size_t n, const char *s) {
  size_t k = strlen(s);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(p + i, s, k) == 0) return true;
  return false;
}

/* Reads every record; returns the count, or -1 on error (message kept). */
static long count_records(const char *path) {
  cg_seqfile *f;
  if (cg_seqfile_open(path, &f)) return -1;
  long n = 0;
  cg_seqfile_record r;
  int rc;
  while ((rc = cg_seqfile_next(f, &r)) == 1) n++;
  cg_seqfile_close(f);
  return rc < 0 ? -1 : n;
}

static void test_vlong(void) {
  const int64_t values[] = {0, 1, -1, 127, -112, 128, -113, 255, 256, -256, 65535, 1 << 24, -(1 << 24), INT32_MAX,
                            INT32_MIN, INT64_MAX, INT64_MIN, 196616};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    uint8_t buf[9];
    size_t n = cg_seqfile_write_vlong(buf, values[i]);
    int64_t back = 0;
    CHECK_EQ_INT(cg_seqfile_read_vlong(buf, n, &back), n);
    CHECK_MSG(back == values[i], "vlong %lld came back as %lld", (long long)values[i], (long long)back);
    CHECK_EQ_INT(cg_seqfile_read_vlong(buf, n - 1, &back), 0); /* one byte short */
  }
  /* Hadoop's encodings: 127 fits one byte; 128 is 0x8f 0x80; -113 is 0x87 0x70; 300 is 0x8e 0x01 0x2c */
  uint8_t buf[9];
  CHECK(cg_seqfile_write_vlong(buf, 127) == 1 && buf[0] == 0x7f);
  CHECK(cg_seqfile_write_vlong(buf, 128) == 2 && buf[0] == 0x8f && buf[1] == 0x80);
  CHECK(cg_seqfile_write_vlong(buf, -113) == 2 && buf[0] == 0x87 && buf[1] == 0x70);
  CHECK(cg_seqfile_write_vlong(buf, 300) == 3 && buf[0] == 0x8e && buf[1] == 0x01 && buf[2] == 0x2c);
}

/* nutchpy/crawldb_data: uncompressed, Text keys, CrawlDatum values, 8 records. */
static void test_nutch(void) {
  const char *path = data_path("nutchpy/crawldb_data");
  cg_seqfile *f;
  int rc = cg_seqfile_open(path, &f);
  CHECK_MSG(rc == 0, "open: %s", cg_error_message());
  if (rc) return;
  const cg_seqfile_header *h = cg_seqfile_get_header(f);
  CHECK_EQ_INT(h->version, 6);
  CHECK(strcmp(h->key_class, "org.apache.hadoop.io.Text") == 0);
  CHECK(strcmp(h->value_class, "org.apache.nutch.crawl.CrawlDatum") == 0);
  CHECK_EQ_INT(h->compression, CG_SEQFILE_NONE);
  CHECK(h->codec == NULL && h->codec_supported);
  CHECK_EQ_INT(h->num_metadata, 0);
  CHECK(hex_equal(h->sync, "c3ff26fe2816ec1112ca48a4194eab87"));
  CHECK_EQ_INT(cg_seqfile_size(f), 798);
  const char *expect_keys[8] = {"http://nutch.apache.org/",          "http://nutch.apache.org/bot.html",
                                "http://nutch.apache.org/credits.html", "http://nutch.apache.org/downloads.html",
                                "http://nutch.apache.org/index.html",   "http://nutch.apache.org/javadoc.html",
                                "http://nutch.apache.org/mailing_lists.html",
                                "http://nutch.apache.org/version_control.html"};
  cg_seqfile_record r;
  int n = 0;
  uint64_t end = h->data_offset;
  while ((rc = cg_seqfile_next(f, &r)) == 1) {
    if (n < 8)
      CHECK_MSG(r.key_len == strlen(expect_keys[n]) && memcmp(r.key, expect_keys[n], r.key_len) == 0,
                "key %d: '%.*s'", n, (int)r.key_len, (const char *)r.key);
    CHECK_EQ_INT(r.raw_key_len, r.key_len + 1); /* Text: one vint byte + the bytes */
    CHECK(r.value == r.raw_value);                /* CrawlDatum: not decoded */
    if (n == 0) CHECK_EQ_INT(r.value_len, 151);
    CHECK_EQ_INT(r.pos.offset, end); /* no gaps and no sync escapes in this small file */
    end = r.pos.offset + 8 + r.raw_key_len + r.raw_value_len;
    n++;
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(n, 8);
  CHECK_EQ_INT(end, 798); /* the parse ends exactly at EOF */
  /* random access after the pass */
  cg_seqfile_rewind(f);
  cg_seqfile_pos pos[8];
  for (int i = 0; i < 8; i++) CHECK_EQ_INT(cg_seqfile_skip(f, &pos[i]), 1);
  CHECK_EQ_INT(cg_seqfile_skip(f, &pos[0]), 0);
  CHECK_EQ_INT(cg_seqfile_read_at(f, pos[4], &r), 0);
  CHECK(r.key_len == strlen(expect_keys[4]) && memcmp(r.key, expect_keys[4], r.key_len) == 0);
  cg_seqfile_close(f);
}

/* warp10-pig/test.seq: one zlib block of 31 BytesWritable/BytesWritable records. */
static void test_warp10(void) {
  const char *path = data_path("warp10-pig/test.seq");
  cg_seqfile *f;
  int rc = cg_seqfile_open(path, &f);
  CHECK_MSG(rc == 0, "open: %s", cg_error_message());
  if (rc) return;
  const cg_seqfile_header *h = cg_seqfile_get_header(f);
  CHECK_EQ_INT(h->version, 6);
  CHECK(strcmp(h->key_class, "org.apache.hadoop.io.BytesWritable") == 0);
  CHECK(strcmp(h->value_class, "org.apache.hadoop.io.BytesWritable") == 0);
  CHECK_EQ_INT(h->compression, CG_SEQFILE_BLOCK);
  CHECK(h->codec && strcmp(h->codec, "org.apache.hadoop.io.compress.DefaultCodec") == 0 && h->codec_supported);
  CHECK(hex_equal(h->sync, "ef6818d3351e69764c7d2bc638ca230e"));
  cg_seqfile_record r;
  int n = 0;
  size_t key_total = 0, value_total = 0;
  uint8_t first[4][8];
  int distinct = 0;
  while ((rc = cg_seqfile_next(f, &r)) == 1) {
    CHECK_EQ_INT(r.pos.index, n);
    CHECK_EQ_INT(r.raw_key_len, r.key_len + 4); /* BytesWritable: int32 length + the bytes */
    key_total += r.raw_key_len;
    value_total += r.raw_value_len;
    if (n == 0) {
      CHECK_EQ_INT(r.key_len, 135);
      CHECK(contains(r.key, r.key_len, "linux.proc.pid.cminflt") && contains(r.key, r.key_len, "udevd"));
      CHECK_EQ_INT(r.value_len, 12);
    }
    if (n == 1) CHECK(contains(r.key, r.key_len, "rsyslogd"));
    if (n < 4) {
      memcpy(first[n], r.key + 100, 8);
      bool dup = false;
      for (int k = 0; k < n; k++) dup |= memcmp(first[k], first[n], 8) == 0;
      distinct += !dup;
    }
    n++;
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(n, 31);
  CHECK_EQ_INT(key_total, 4393);
  CHECK_EQ_INT(value_total, 459);
  CHECK_EQ_INT(distinct, 4);
  cg_seqfile_close(f);
}

/* bigdl/imagenet-seq-0_0.seq: record-compressed, Text "1" keys, 3 BGR images of 256x256,
 * a sync escape before the second and the third record. */
static void test_bigdl(void) {
  NEED_DATA("seqfile/bigdl/imagenet-seq-0_0.seq");
  const char *path = data_path("bigdl/imagenet-seq-0_0.seq");
  cg_seqfile *f;
  int rc = cg_seqfile_open(path, &f);
  CHECK_MSG(rc == 0, "open: %s", cg_error_message());
  if (rc) return;
  const cg_seqfile_header *h = cg_seqfile_get_header(f);
  CHECK(strcmp(h->key_class, "org.apache.hadoop.io.Text") == 0);
  CHECK(strcmp(h->value_class, "org.apache.hadoop.io.BytesWritable") == 0);
  CHECK_EQ_INT(h->compression, CG_SEQFILE_RECORD);
  CHECK(h->codec && strcmp(h->codec, "org.apache.hadoop.io.compress.DefaultCodec") == 0);
  CHECK(hex_equal(h->sync, "d894d10ad95526844533f1cb50cc6bdb"));
  CHECK_EQ_INT(h->data_offset, 130);
  /* stored record lengths 182841, 93574, 67913; 20-byte sync escapes between them */
  const uint64_t offsets[3] = {130, 130 + 8 + 182841 + 20, 130 + 8 + 182841 + 20 + 8 + 93574 + 20};
  const uint8_t first_pixels[3][3] = {{0x12, 0x32, 0x6c}, {0xff, 0xff, 0xff}, {0x75, 0x7d, 0x72}};
  cg_seqfile_record r;
  int n = 0;
  while ((rc = cg_seqfile_next(f, &r)) == 1) {
    if (n < 3) {
      CHECK_EQ_INT(r.pos.offset, offsets[n]);
      CHECK(r.key_len == 1 && r.key[0] == '1');
      CHECK_EQ_INT(r.value_len, 8 + 256 * 256 * 3);
      if (r.value_len == 8 + 256 * 256 * 3) {
        CHECK(hex_equal(r.value, "0000010000000100")); /* width 256, height 256 */
        CHECK(memcmp(r.value + 8, first_pixels[n], 3) == 0);
      }
    }
    n++;
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(n, 3);
  CHECK_EQ_INT(offsets[2] + 8 + 67913, cg_seqfile_size(f)); /* the last record ends at EOF */
  cg_seqfile_close(f);
}

/* Every cut of `path` between from and to: an error naming the copy (or, at a
 * record boundary of an uncompressed file, the records before the cut). */
static void cut_copies(const char *path, size_t from, size_t to, size_t step, const uint64_t *ends, int num_ends,
                       uint64_t header_end) {
  size_t len;
  uint8_t *d = read_whole(path, &len);
  CHECK(d != NULL);
  if (!d) return;
  char cut_path[512];
  snprintf(cut_path, sizeof cut_path, "%s/cut.seq", tmpdir);
  int errors = 0, clean = 0, bad = 0;
  for (size_t cut = from; cut < to && cut < len; cut += step) {
    write_whole(cut_path, d, cut);
    long n = count_records(cut_path);
    long expect = -1;
    if (cut == header_end) expect = 0;
    for (int i = 0; i < num_ends; i++)
      if (ends[i] == cut) expect = i + 1;
    if (n != expect) {
      bad++;
      CHECK_MSG(0, "cut at %zu of %s: %ld records, expected %ld (%s)", cut, path, n, expect, cg_error_message());
    } else if (n < 0) {
      errors++;
      const char *msg = cg_error_message();
      if (!strstr(msg, cut_path) || (cut >= 4 && !strstr(msg, "at byte"))) {
        bad++;
        CHECK_MSG(0, "cut at %zu: message does not name the file and offset: %s", cut, msg);
      }
    } else {
      clean++;
    }
  }
  CHECK_MSG(bad == 0, "%s: %d bad cuts", path, bad);
  CHECK(errors > 0);
  (void)clean;
  unlink(cut_path);
  free(d);
}

static void test_truncated(void) {
  /* nutch: every cut; the files that end at a record boundary are valid shorter files */
  const char *nutch = data_path("nutchpy/crawldb_data");
  cg_seqfile *f;
  uint64_t ends[8];
  uint64_t header_end = 0;
  if (cg_seqfile_open(nutch, &f) == 0) {
    header_end = cg_seqfile_get_header(f)->data_offset;
    cg_seqfile_record r;
    int n = 0;
    while (cg_seqfile_next(f, &r) == 1 && n < 8) ends[n++] = r.pos.offset + 8 + r.raw_key_len + r.raw_value_len;
    cg_seqfile_close(f);
  }
  cut_copies(nutch, 0, 798, 1, ends, 8, header_end);
  /* warp10: one block, so any cut after the header breaks it */
  cut_copies(data_path("warp10-pig/test.seq"), 0, 1066, 1, NULL, 0, 0x7b + 16);
  if (test_data_present(__func__, "seqfile/bigdl/imagenet-seq-0_0.seq", NULL)) {
    /* bigdl: a few cuts, in the header, records, sync escapes and at the very end */
    const size_t bigdl_cuts[] = {2, 3, 50, 0x72 + 8, 0x72 + 16 + 2, 0x72 + 16 + 6, 1000, 100000, 182980, 182990,
                                 200000, 300000, 344522 - 20, 344522 - 1};
    for (size_t i = 0; i < sizeof bigdl_cuts / sizeof bigdl_cuts[0]; i++)
      cut_copies(data_path("bigdl/imagenet-seq-0_0.seq"), bigdl_cuts[i], bigdl_cuts[i] + 1, 1, NULL, 0, 0x72 + 16);
    /* the first record of bigdl ends at header + 8 + 182841: that cut is a clean file of one record */
    uint64_t one_end[1] = {0x72 + 16 + 8 + 182841};
    cut_copies(data_path("bigdl/imagenet-seq-0_0.seq"), one_end[0] - 1, one_end[0] + 2, 1, one_end, 1, 0x72 + 16);
  }
}

/* Damaged copies: each a clear error, no crash, no huge allocation. */
static void test_damaged(void) {
  size_t len;
  uint8_t *d = read_whole(data_path("nutchpy/crawldb_data"), &len);
  CHECK(d != NULL);
  if (!d) return;
  char p[512];
  snprintf(p, sizeof p, "%s/damaged.seq", tmpdir);
  uint8_t *c = malloc(len);
  struct {
    size_t at;
    uint8_t byte;
    const char *expect;
  } cases[] = {
      {0, 'X', "not a Hadoop SequenceFile"},
      {3, 7, "version 7 is not supported"},
      {4, 0x8c, "the key class name needs 1869768494 bytes"}, /* a 5-byte vint length reading "org." */
      {0x56, 0x80, "negative record length"},
      {0x5d, 0xff, "outside the record length"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memcpy(c, d, len);
    c[cases[i].at] = cases[i].byte;
    unlink(p);
    write_whole(p, c, len);
    CHECK_EQ_INT(count_records(p), -1);
    CHECK_STR_CONTAINS(cg_error_message(), cases[i].expect);
    CHECK_STR_CONTAINS(cg_error_message(), "damaged.seq");
  }
  /* metadata count of 2^31-1 pairs: refused before any allocation */
  memcpy(c, d, len);
  c[0x42] = 0x7f, c[0x43] = c[0x44] = c[0x45] = 0xff;
  write_whole(p, c, len);
  CHECK_EQ_INT(count_records(p), -1);
  CHECK_STR_CONTAINS(cg_error_message(), "metadata count 2147483647");
  /* a sync escape whose marker differs from the header's */
  uint8_t *e = malloc(len + 20);
  memcpy(e, d, 0x56);
  memset(e + 0x56, 0xff, 4);
  memset(e + 0x5a, 0x42, 16);
  memcpy(e + 0x6a, d + 0x56, len - 0x56);
  write_whole(p, e, len + 20);
  CHECK_EQ_INT(count_records(p), -1);
  CHECK_STR_CONTAINS(cg_error_message(), "sync marker does not match");
  /* ... and with the right marker it is skipped: still 8 records */
  memcpy(e + 0x5a, d + 0x46, 16);
  write_whole(p, e, len + 20);
  CHECK_EQ_INT(count_records(p), 8);
  free(e);
  /* an empty file and a missing one */
  write_whole(p, d, 0);
  CHECK_EQ_INT(count_records(p), -1);
  CHECK_STR_CONTAINS(cg_error_message(), "not a Hadoop SequenceFile");
  unlink(p);
  CHECK_EQ_INT(count_records(p), -1);
  CHECK_STR_CONTAINS(cg_error_message(), "No such file");
  /* warp10 with a byte of the compressed keys flipped: an error, not garbage */
  free(d);
  d = read_whole(data_path("warp10-pig/test.seq"), &len);
  d[0xa5] ^= 0x55;
  write_whole(p, d, len);
  CHECK_EQ_INT(count_records(p), -1);
  CHECK_STR_CONTAINS(cg_error_message(), "damaged.seq");
  unlink(p);
  free(c);
  free(d);
}

/* Older versions of the header: nutch's records behind a v3, v4 and v5 header. */
static void test_old_versions(void) {
  size_t len;
  uint8_t *d = read_whole(data_path("nutchpy/crawldb_data"), &len);
  CHECK(d != NULL);
  if (!d) return;
  /* v6 header: SEQ 6 | 0x19 Text class | 0x21 CrawlDatum class | 2 flags at 0x40 | metadata count at 0x42 | sync at 0x46 */
  char p[512];
  snprintf(p, sizeof p, "%s/old.seq", tmpdir);
  for (int version = 3; version <= 5; version++) {
    uint8_t *o = malloc(len + 8);
    size_t n = 0;
    memcpy(o, "SEQ", 3);
    o[3] = (uint8_t)version;
    n = 4;
    if (version < 4) { /* class names as UTF8: 2-byte lengths */
      o[n++] = 0, o[n++] = 25;
      memcpy(o + n, d + 5, 25), n += 25;
      o[n++] = 0, o[n++] = 33;
      memcpy(o + n, d + 31, 33), n += 33;
    } else {
      memcpy(o + n, d + 4, 60), n += 60;
    }
    o[n++] = 0;                  /* not compressed */
    if (version >= 4) o[n++] = 0; /* not block-compressed */
    memcpy(o + n, d + 0x46, len - 0x46); /* sync and records */
    n += len - 0x46;
    write_whole(p, o, n);
    cg_seqfile *f;
    int rc = cg_seqfile_open(p, &f);
    CHECK_MSG(rc == 0, "version %d: %s", version, cg_error_message());
    if (!rc) {
      CHECK_EQ_INT(cg_seqfile_get_header(f)->version, version);
      CHECK(strcmp(cg_seqfile_get_header(f)->value_class, "org.apache.nutch.crawl.CrawlDatum") == 0);
      cg_seqfile_record r;
      CHECK_EQ_INT(cg_seqfile_next(f, &r), 1);
      CHECK(r.key_len == 24 && memcmp(r.key, "http://nutch.apache.org/", 24) == 0);
      cg_seqfile_close(f);
    }
    CHECK_EQ_INT(count_records(p), 8);
    free(o);
  }
  unlink(p);
  free(d);
}

/* gzip-compressed buffers, as GzipCodec writes them (record and block layouts, built by hand). */
static size_t gzip_bytes(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)n;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  deflate(&zs, Z_FINISH);
  size_t got = cap - zs.avail_out;
  deflateEnd(&zs);
  return got;
}

static size_t put_text(uint8_t *o, const char *s) {
  size_t n = cg_seqfile_write_vlong(o, (int64_t)strlen(s));
  memcpy(o + n, s, strlen(s));
  return n + strlen(s);
}

static void put32(uint8_t *o, uint32_t v) { o[0] = (uint8_t)(v >> 24), o[1] = (uint8_t)(v >> 16), o[2] = (uint8_t)(v >> 8), o[3] = (uint8_t)v; }

static void test_gzip_codec(void) {
  static uint8_t file[8192], tmp[1024], raw[4][512];
  const char *values[3] = {"first value", "", "the third value, a little longer than the others"};
  const uint8_t sync[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  char p[512];
  snprintf(p, sizeof p, "%s/gzip.seq", tmpdir);
  for (int block = 0; block < 2; block++) {
    size_t n = 0;
    memcpy(file, "SEQ\6", 4), n = 4;
    n += put_text(file + n, "org.apache.hadoop.io.Text");
    n += put_text(file + n, "org.apache.hadoop.io.Text");
    file[n++] = 1, file[n++] = (uint8_t)block;
    n += put_text(file + n, "org.apache.hadoop.io.compress.GzipCodec");
    put32(file + n, 1), n += 4; /* one metadata pair */
    n += put_text(file + n, "creator"), n += put_text(file + n, "test_seqfile");
    memcpy(file + n, sync, 16), n += 16;
    size_t raw_len[4] = {0, 0, 0, 0};
    for (int i = 0; i < 3; i++) {
      uint8_t key[16], value[128];
      char k[16];
      snprintf(k, sizeof k, "k%d", i);
      size_t kl = put_text(key, k), vl = put_text(value, values[i]);
      if (block) {
        raw_len[0] += cg_seqfile_write_vlong(raw[0] + raw_len[0], (int64_t)kl);
        memcpy(raw[1] + raw_len[1], key, kl), raw_len[1] += kl;
        raw_len[2] += cg_seqfile_write_vlong(raw[2] + raw_len[2], (int64_t)vl);
        memcpy(raw[3] + raw_len[3], value, vl), raw_len[3] += vl;
      } else {
        size_t cl = gzip_bytes(value, vl, tmp, sizeof tmp);
        put32(file + n, (uint32_t)(kl + cl)), put32(file + n + 4, (uint32_t)kl), n += 8;
        memcpy(file + n, key, kl), n += kl;
        memcpy(file + n, tmp, cl), n += cl;
      }
    }
    if (block) {
      put32(file + n, 0xffffffffu), n += 4;
      memcpy(file + n, sync, 16), n += 16;
      file[n++] = 3;
      for (int part = 0; part < 4; part++) {
        size_t cl = gzip_bytes(raw[part], raw_len[part], tmp, sizeof tmp);
        n += cg_seqfile_write_vlong(file + n, (int64_t)cl);
        memcpy(file + n, tmp, cl), n += cl;
      }
    }
    write_whole(p, file, n);
    cg_seqfile *f;
    int rc = cg_seqfile_open(p, &f);
    CHECK_MSG(rc == 0, "gzip %s: %s", block ? "block" : "record", cg_error_message());
    if (rc) continue;
    const cg_seqfile_header *h = cg_seqfile_get_header(f);
    CHECK(h->codec_supported && h->num_metadata == 1 && strcmp(h->metadata[0], "creator") == 0 &&
          strcmp(h->metadata[1], "test_seqfile") == 0);
    CHECK_EQ_INT(h->compression, block ? CG_SEQFILE_BLOCK : CG_SEQFILE_RECORD);
    cg_seqfile_record r;
    int i = 0;
    while ((rc = cg_seqfile_next(f, &r)) == 1) {
      char k[16];
      snprintf(k, sizeof k, "k%d", i);
      CHECK(r.key_len == 2 && memcmp(r.key, k, 2) == 0);
      CHECK(i < 3 && r.value_len == strlen(values[i]) && memcmp(r.value, values[i], r.value_len) == 0);
      i++;
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(i, 3);
    cg_seqfile_close(f);
  }
  /* an unknown codec: the header and the count are readable, the records are not */
  static const char snappy[] = "org.apache.hadoop.io.compress.SnappyCodec";
  size_t n = 0;
  memcpy(file, "SEQ\6", 4), n = 4;
  n += put_text(file + n, "org.apache.hadoop.io.Text");
  n += put_text(file + n, "org.apache.hadoop.io.Text");
  file[n++] = 1, file[n++] = 0;
  n += put_text(file + n, snappy);
  put32(file + n, 0), n += 4;
  memcpy(file + n, sync, 16), n += 16;
  put32(file + n, 5), put32(file + n + 4, 3), n += 8;
  memcpy(file + n, "\002k0xy", 5), n += 5;
  unlink(p);
  write_whole(p, file, n);
  cg_seqfile *f;
  if (cg_seqfile_open(p, &f) == 0) {
    CHECK(!cg_seqfile_get_header(f)->codec_supported);
    cg_seqfile_pos pos, after;
    CHECK_EQ_INT(cg_seqfile_skip(f, &pos), 1);
    CHECK_EQ_INT(cg_seqfile_skip(f, &after), 0);
    cg_seqfile_record r;
    CHECK(cg_seqfile_read_at(f, pos, &r) == CG_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(cg_error_message(), "SnappyCodec is not supported");
    cg_seqfile_close(f);
  } else {
    CHECK_MSG(0, "snappy header: %s", cg_error_message());
  }
  unlink(p);
}

/* Single bytes changed all over the small files (a fixed pseudo-random walk): each copy
 * is read whole, and either parses or fails with a message naming it; nothing crashes
 * (the ASan build checks the reads). */
static void test_flipped_bytes(void) {
  const char *files[2] = {"nutchpy/crawldb_data", "warp10-pig/test.seq"};
  char p[512];
  snprintf(p, sizeof p, "%s/flipped.seq", tmpdir);
  uint64_t x = 88172645463325252ull;
  int unnamed = 0, tries = 0;
  for (int k = 0; k < 2; k++) {
    size_t len;
    uint8_t *d = read_whole(data_path(files[k]), &len);
    if (!d) continue;
    for (int t = 0; t < 400; t++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t at = (size_t)(x % len);
      uint8_t old = d[at];
      d[at] ^= (uint8_t)(1 + (x >> 32) % 255);
      unlink(p);
      write_whole(p, d, len);
      d[at] = old;
      long n = count_records(p);
      tries++;
      if (n < 0 && !strstr(cg_error_message(), "flipped.seq")) {
        unnamed++;
        fprintf(stderr, "byte %zu of %s: %s\n", at, files[k], cg_error_message());
      }
    }
    free(d);
  }
  CHECK_EQ_INT(tries, 800);
  CHECK_EQ_INT(unnamed, 0);
  unlink(p);
}

static uint8_t value_byte(int record, size_t i) { return (uint8_t)(record * 131 + i * 7 + (i >> 9)); }

static size_t value_size(int record) {
  if (record == 3) return 0;
  if (record == 1000) return 1500000; /* bigger than a block */
  return (size_t)(record * 37 % 1500);
}

static void round_trip(cg_seqfile_compression mode) {
  char p[512];
  snprintf(p, sizeof p, "%s/round%d.seq", tmpdir, (int)mode);
  unlink(p);
  cg_seqfile_writer *w;
  int rc = cg_seqfile_writer_open(p, mode, &w);
  CHECK_MSG(rc == 0, "writer: %s", cg_error_message());
  if (rc) return;
  enum { N = 2500 };
  uint8_t *value = malloc(1500000);
  for (int i = 0; i < N && !rc; i++) {
    char key[64];
    snprintf(key, sizeof key, "images/%05d.jpg\t%d", i, i % 10);
    for (size_t k = 0; k < value_size(i); k++) value[k] = value_byte(i, k);
    rc = cg_seqfile_writer_append(w, key, strlen(key), value, value_size(i));
  }
  CHECK_MSG(rc == 0, "append: %s", cg_error_message());
  CHECK_EQ_INT(cg_seqfile_writer_close(w), 0);
  /* the writer refuses to overwrite */
  CHECK(cg_seqfile_writer_open(p, mode, &w) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "already exists");

  cg_seqfile *f;
  rc = cg_seqfile_open(p, &f);
  CHECK_MSG(rc == 0, "reopen: %s", cg_error_message());
  if (rc) {
    free(value);
    return;
  }
  const cg_seqfile_header *h = cg_seqfile_get_header(f);
  CHECK_EQ_INT(h->compression, mode);
  CHECK(strcmp(h->key_class, "org.apache.hadoop.io.Text") == 0);
  CHECK(strcmp(h->value_class, "org.apache.hadoop.io.BytesWritable") == 0);
  CHECK(mode == CG_SEQFILE_NONE ? h->codec == NULL
                                : strcmp(h->codec, "org.apache.hadoop.io.compress.DefaultCodec") == 0);
  cg_seqfile_record r;
  int n = 0, mismatches = 0, blocks = 0;
  uint64_t last_offset = 0;
  cg_seqfile_pos pos_1234 = {0, 0};
  while ((rc = cg_seqfile_next(f, &r)) == 1) {
    char key[64];
    snprintf(key, sizeof key, "images/%05d.jpg\t%d", n, n % 10);
    bool ok = r.key_len == strlen(key) && memcmp(r.key, key, r.key_len) == 0 && r.value_len == value_size(n);
    for (size_t k = 0; ok && k < r.value_len; k++) ok = r.value[k] == value_byte(n, k);
    mismatches += !ok;
    if (r.pos.offset != last_offset) blocks++;
    last_offset = r.pos.offset;
    if (n == 1234) pos_1234 = r.pos;
    n++;
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(n, N);
  CHECK_EQ_INT(mismatches, 0);
  if (mode == CG_SEQFILE_BLOCK) CHECK_MSG(blocks >= 3, "%d blocks", blocks);
  CHECK_EQ_INT(cg_seqfile_read_at(f, pos_1234, &r), 0);
  CHECK(r.key_len >= 11 && memcmp(r.key, "images/01234", 12) == 0);
  CHECK_EQ_INT(r.value_len, value_size(1234));
  cg_seqfile_close(f);
  if (mode != CG_SEQFILE_BLOCK) {
    /* sync escapes were written every ~2000 bytes: count them in the raw file */
    size_t len;
    uint8_t *d = read_whole(p, &len);
    cg_seqfile_open(p, &f);
    const uint8_t *sync = cg_seqfile_get_header(f)->sync;
    int syncs = 0;
    for (size_t i = 0; i + 20 <= len; i++)
      if (d[i] == 0xff && d[i + 1] == 0xff && d[i + 2] == 0xff && d[i + 3] == 0xff && memcmp(d + i + 4, sync, 16) == 0)
        syncs++;
    CHECK_MSG(syncs > 100, "%d sync escapes", syncs);
    cg_seqfile_close(f);
    free(d);
  }
  free(value);
  unlink(p);
}

static void test_key_label(void) {
  size_t id_len;
  float label;
  CHECK(cg_seqfile_key_label("images/cat.jpg\t3", 16, &id_len, &label) && id_len == 14 && label == 3);
  CHECK(cg_seqfile_key_label("my cat.jpg 7", 12, &id_len, &label) && id_len == 10 && label == 7);
  CHECK(cg_seqfile_key_label("a b\t-1.5", 8, &id_len, &label) && id_len == 3 && label == -1.5f);
  CHECK(cg_seqfile_key_label("1", 1, &id_len, &label) && id_len == 1 && label == 1);
  CHECK(!cg_seqfile_key_label("http://nutch.apache.org/", 24, &id_len, &label) && id_len == 24);
  CHECK(!cg_seqfile_key_label("x\tnotanumber", 12, &id_len, &label));
  CHECK(!cg_seqfile_key_label("x\t", 2, &id_len, &label));
  CHECK(!cg_seqfile_key_label("", 0, &id_len, &label));
}

static void test_source(void) {
  cg_source *s;
  int rc;
  if (test_data_present(__func__, "seqfile/bigdl/imagenet-seq-0_0.seq", NULL)) {
    /* BigDL: three 256x256 BGR images, label 1 from the key, made channel-first */
    rc = cg_source_open("seqfile", data_path("bigdl/imagenet-seq-0_0.seq"), NULL, &s);
    CHECK_MSG(rc == 0, "open: %s", cg_error_message());
    if (!rc) {
      CHECK_EQ_INT(cg_source_count(s), 3);
      const uint8_t first[3][3] = {{0x12, 0x32, 0x6c}, {0xff, 0xff, 0xff}, {0x75, 0x7d, 0x72}};
      for (size_t i = 0; i < 3; i++) {
        cg_record r;
        rc = cg_source_get(s, i, &r);
        CHECK_MSG(rc == 0, "get %zu: %s", i, cg_error_message());
        if (rc) continue;
        CHECK_EQ_INT(r.kind, CG_RECORD_PIXELS);
        CHECK(r.channels == 3 && r.height == 256 && r.width == 256 && r.num_bytes == 3 * 256 * 256);
        CHECK(r.has_label && r.label == 1);
        CHECK(strcmp(r.id, "1") == 0);
        const size_t plane = 256 * 256;
        CHECK(r.bytes[0] == first[i][0] && r.bytes[plane] == first[i][1] && r.bytes[2 * plane] == first[i][2]);
      }
      cg_source_close(s);
    }
  }
  /* nutch: CrawlDatum values are not images: a clear error naming the record */
  rc = cg_source_open("seqfile", data_path("nutchpy/crawldb_data"), NULL, &s);
  CHECK(rc == 0);
  if (!rc) {
    CHECK_EQ_INT(cg_source_count(s), 8);
    cg_record r;
    CHECK(cg_source_get(s, 1, &r) != 0);
    CHECK_STR_CONTAINS(cg_error_message(), "http://nutch.apache.org/bot.html");
    CHECK_STR_CONTAINS(cg_error_message(), "not an image");
    cg_source_close(s);
  }
  /* a directory of part files: the round-trip writer's files, in name order, _SUCCESS skipped */
  char dir[512], p[600];
  snprintf(dir, sizeof dir, "%s/parts", tmpdir);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  CHECK(system(cmd) == 0);
  const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const uint8_t jpg[4] = {0xff, 0xd8, 0xff, 0xe0};
  for (int part = 0; part < 2; part++) {
    snprintf(p, sizeof p, "%s/part-%05d", dir, part);
    unlink(p);
    cg_seqfile_writer *w;
    CHECK(cg_seqfile_writer_open(p, part ? CG_SEQFILE_BLOCK : CG_SEQFILE_RECORD, &w) == 0);
    for (int i = 0; i < 3; i++) {
      char key[64];
      snprintf(key, sizeof key, "part%d/img%d.png\t%d", part, i, part * 3 + i);
      cg_seqfile_writer_append(w, key, strlen(key), i % 2 ? jpg : png, i % 2 ? 4 : 8);
    }
    CHECK(cg_seqfile_writer_close(w) == 0);
  }
  snprintf(p, sizeof p, "%s/_SUCCESS", dir);
  write_whole(p, (const uint8_t *)"", 0);
  rc = cg_source_open("seqfile", dir, NULL, &s);
  CHECK_MSG(rc == 0, "open dir: %s", cg_error_message());
  if (!rc) {
    CHECK_EQ_INT(cg_source_count(s), 6);
    for (size_t i = 0; i < 6; i++) {
      cg_record r;
      CHECK(cg_source_get(s, i, &r) == 0);
      char id[64];
      snprintf(id, sizeof id, "part%zu/img%zu.png", i / 3, i % 3);
      CHECK_MSG(strcmp(r.id, id) == 0, "id %s", r.id);
      CHECK(r.kind == CG_RECORD_IMAGE && r.has_label && r.label == (float)i);
      CHECK_EQ_INT(r.num_bytes, i % 3 == 1 ? 4 : 8);
    }
    cg_source_close(s);
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  /* a missing file */
  CHECK(cg_source_open("seqfile", "/nonexistent/x.seq", NULL, &s) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "/nonexistent/x.seq");
}

int main(void) {
  const char *env = getenv("SHARED_DATA");
  snprintf(shared, sizeof shared, "%s", env && env[0] ? env : "../shared/data");
  snprintf(tmpdir, sizeof tmpdir, "/tmp/cg_seqfile_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_vlong();
  test_key_label();
  test_nutch();
  test_warp10();
  test_bigdl();
  test_truncated();
  test_damaged();
  test_old_versions();
  test_flipped_bytes();
  test_gzip_codec();
  round_trip(CG_SEQFILE_NONE);
  round_trip(CG_SEQFILE_RECORD);
  round_trip(CG_SEQFILE_BLOCK);
  test_source();
  rmdir(tmpdir);
  return CHECK_REPORT();
}
