/* Hadoop SequenceFile reader and writer. The reader maps the file and walks it
 * with an explicit offset; every length is checked against the bytes left before
 * it is used, so a cut or corrupt file ends in an error naming the file and the
 * byte offset, never in a read past the end or an oversized allocation.
 *
 * Layout (Hadoop's SequenceFile.Writer, version 6):
 *   "SEQ" version | key class, value class (Text strings; 2-byte-length UTF8 before v4)
 *   | compressed? (v3+) | block-compressed? (v4+) | codec class (v5+, when compressed)
 *   | metadata: int32 count + count Text pairs (v6) | 16-byte sync (v2+)
 *   records:  int32 record length (-1 = sync escape: 16 sync bytes follow), int32 key
 *             length, key bytes, value bytes (the value compressed alone in record mode)
 *   blocks:   sync escape, vint record count, then four (vint length, compressed bytes)
 *             buffers: key lengths (vints), keys, value lengths (vints), values. */
#include "caffegrid/seqfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "caffegrid/error.h"

static const char TEXT_CLASS[] = "org.apache.hadoop.io.Text";
static const char BYTES_CLASS[] = "org.apache.hadoop.io.BytesWritable";
static const char DEFAULT_CODEC[] = "org.apache.hadoop.io.compress.DefaultCodec";
static const char GZIP_CODEC[] = "org.apache.hadoop.io.compress.GzipCodec";

enum { SYNC_SIZE = 16, SYNC_ESCAPE = -1 };
/* Hadoop writes a sync escape before a record once this many bytes have passed since the last. */
enum { SYNC_INTERVAL = 100 * (4 + SYNC_SIZE) };
/* Hadoop's default io.seqfile.compress.blocksize: a block is written once its keys and values reach it. */
enum { BLOCK_TARGET = 1000000 };
/* Nothing decompresses to more than this (Hadoop's lengths are int32). */
#define MAX_DECOMPRESSED ((size_t)INT32_MAX)

typedef enum { CLASS_OTHER, CLASS_TEXT, CLASS_BYTES } writable_class;

typedef struct buffer {
  uint8_t *data;
  size_t len, cap;
} buffer;

static int buffer_reserve(buffer *b, size_t cap) {
  if (cap <= b->cap) return CG_OK;
  size_t n = b->cap ? b->cap : 256;
  while (n < cap) n = n > SIZE_MAX / 2 ? cap : n * 2;
  uint8_t *p = realloc(b->data, n);
  if (!p) return cg_error(CG_ERR_NOMEM, "out of memory (%zu bytes)", n);
  b->data = p;
  b->cap = n;
  return CG_OK;
}

static int buffer_append(buffer *b, const void *p, size_t n) {
  if (n > SIZE_MAX - b->len) return cg_error(CG_ERR_NOMEM, "out of memory");
  int rc = buffer_reserve(b, b->len + n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return CG_OK;
}

static void buffer_free(buffer *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

/* One record's place in a decompressed block. */
typedef struct block_entry {
  size_t key_start, key_len, value_start, value_len;
} block_entry;

struct cg_seqfile {
  char *path;
  const uint8_t *data;
  size_t size;
  size_t mapped; /* bytes mapped; 0 when data is not a mapping */
  cg_seqfile_header hdr;
  char *key_class, *value_class, *codec;
  char **metadata;
  writable_class key_kind, value_kind;
  /* sequential cursor */
  uint64_t next;
  uint64_t block_offset;
  uint32_t block_count, block_index;
  bool in_block;
  /* decompressed data */
  buffer value_buf;
  bool cache_valid;
  uint64_t cache_offset;
  uint32_t cache_count;
  buffer parts[4]; /* key lengths, keys, value lengths, values */
  block_entry *entries;
  size_t entries_cap;
};

/* ---- errors ---- */

static int truncated(const cg_seqfile *f, uint64_t at, const char *what, uint64_t need) {
  return cg_error(CG_ERR_CORRUPT, "SequenceFile '%s' is truncated at byte %llu: %s needs %llu bytes, %llu left",
                  f->path, (unsigned long long)at, what, (unsigned long long)need,
                  (unsigned long long)(f->size - at));
}

static int corrupt(const cg_seqfile *f, uint64_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int corrupt(const cg_seqfile *f, uint64_t at, const char *fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return cg_error(CG_ERR_CORRUPT, "SequenceFile '%s' is corrupt at byte %llu: %s", f->path, (unsigned long long)at,
                  what);
}

/* ---- primitive reads at an offset, each checked against the file size ---- */

static int need(const cg_seqfile *f, uint64_t at, uint64_t n, const char *what) {
  if (at > f->size || n > f->size - at) return truncated(f, at, what, n);
  return CG_OK;
}

static int32_t be32(const uint8_t *p) {
  return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static void put_be32(uint8_t *p, int32_t v) {
  uint32_t u = (uint32_t)v;
  p[0] = (uint8_t)(u >> 24), p[1] = (uint8_t)(u >> 16), p[2] = (uint8_t)(u >> 8), p[3] = (uint8_t)u;
}

static int read_int(const cg_seqfile *f, uint64_t *at, int32_t *v, const char *what) {
  int rc = need(f, *at, 4, what);
  if (rc) return rc;
  *v = be32(f->data + *at);
  *at += 4;
  return CG_OK;
}

static int read_bool(const cg_seqfile *f, uint64_t *at, bool *v, const char *what) {
  int rc = need(f, *at, 1, what);
  if (rc) return rc;
  uint8_t b = f->data[*at];
  if (b > 1) return corrupt(f, *at, "%s is %u, not a boolean", what, b);
  *v = b == 1;
  *at += 1;
  return CG_OK;
}

/* Bytes a vlong takes, from its first byte. */
static size_t vlong_size(uint8_t first) {
  int8_t b = (int8_t)first;
  if (b >= -112) return 1;
  return b < -120 ? (size_t)(-119 - b) : (size_t)(-111 - b);
}

size_t cg_seqfile_read_vlong(const uint8_t *p, size_t avail, int64_t *value) {
  if (avail == 0) return 0;
  int8_t first = (int8_t)p[0];
  size_t n = vlong_size(p[0]);
  if (n > avail) return 0;
  if (n == 1) {
    *value = first;
    return 1;
  }
  uint64_t u = 0;
  for (size_t i = 1; i < n; i++) u = u << 8 | p[i];
  *value = first < -120 ? (int64_t)~u : (int64_t)u;
  return n;
}

size_t cg_seqfile_write_vlong(uint8_t *out, int64_t value) {
  if (value >= -112 && value <= 127) {
    out[0] = (uint8_t)(int8_t)value;
    return 1;
  }
  int len = -112;
  uint64_t u = (uint64_t)value;
  if (value < 0) {
    u = ~u;
    len = -120;
  }
  for (uint64_t t = u; t; t >>= 8) len--;
  out[0] = (uint8_t)(int8_t)len;
  int bytes = len < -120 ? -(len + 120) : -(len + 112);
  for (int i = bytes; i > 0; i--) out[1 + bytes - i] = (uint8_t)(u >> ((i - 1) * 8));
  return (size_t)bytes + 1;
}

static int read_vlong(const cg_seqfile *f, uint64_t *at, int64_t *v, const char *what) {
  int rc = need(f, *at, 1, what);
  if (rc) return rc;
  size_t n = vlong_size(f->data[*at]);
  if ((rc = need(f, *at, n, what))) return rc;
  cg_seqfile_read_vlong(f->data + *at, n, v);
  *at += n;
  return CG_OK;
}

/* A length-prefixed string (Text: vint length; UTF8 before v4: uint16 length), copied. */
static int read_string(const cg_seqfile *f, uint64_t *at, bool short_length, char **out, const char *what) {
  uint64_t start = *at;
  int64_t len = 0; /* set by both branches; zeroed for gcc, which cannot see through read_vlong */
  int rc;
  if (short_length) {
    if ((rc = need(f, *at, 2, what))) return rc;
    len = (int64_t)f->data[*at] << 8 | f->data[*at + 1];
    *at += 2;
  } else if ((rc = read_vlong(f, at, &len, what))) {
    return rc;
  }
  if (len < 0) return corrupt(f, start, "%s has a negative length (%lld)", what, (long long)len);
  if ((rc = need(f, *at, (uint64_t)len, what))) return rc;
  char *s = malloc((size_t)len + 1);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  memcpy(s, f->data + *at, (size_t)len);
  s[len] = 0;
  *at += (uint64_t)len;
  *out = s;
  return CG_OK;
}

/* ---- opening ---- */

static writable_class class_of(const char *name) {
  if (strcmp(name, TEXT_CLASS) == 0) return CLASS_TEXT;
  if (strcmp(name, BYTES_CLASS) == 0) return CLASS_BYTES;
  return CLASS_OTHER;
}

static int parse_header(cg_seqfile *f) {
  uint64_t at = 0;
  if (f->size < 3 || memcmp(f->data, "SEQ", 3) != 0)
    return cg_error(CG_ERR_CORRUPT, "'%s' is not a Hadoop SequenceFile (it does not start with 'SEQ')", f->path);
  int rc = need(f, 3, 1, "the version byte");
  if (rc) return rc;
  int version = f->data[3];
  if (version < 1 || version > 6)
    return cg_error(CG_ERR_UNSUPPORTED, "SequenceFile '%s': version %d is not supported (1 to 6 are)", f->path,
                    version);
  at = 4;
  bool old_strings = version < 4;
  if ((rc = read_string(f, &at, old_strings, &f->key_class, "the key class name"))) return rc;
  if ((rc = read_string(f, &at, old_strings, &f->value_class, "the value class name"))) return rc;
  bool compressed = false, block = false;
  if (version > 2 && (rc = read_bool(f, &at, &compressed, "the compression flag"))) return rc;
  if (version >= 4 && (rc = read_bool(f, &at, &block, "the block-compression flag"))) return rc;
  if (block && !compressed) return corrupt(f, at - 1, "block-compressed but not compressed");
  if (compressed) {
    if (version >= 5) {
      if ((rc = read_string(f, &at, false, &f->codec, "the codec class name"))) return rc;
    } else if (!(f->codec = strdup(DEFAULT_CODEC))) {
      return cg_error(CG_ERR_NOMEM, "out of memory");
    }
  }
  if (version >= 6) {
    int32_t count;
    uint64_t count_at = at;
    if ((rc = read_int(f, &at, &count, "the metadata count"))) return rc;
    /* each pair takes at least two bytes: bound the count by what is left before allocating */
    if (count < 0 || (uint64_t)count * 2 > f->size - at)
      return corrupt(f, count_at, "metadata count %d does not fit in the %llu bytes left", count,
                     (unsigned long long)(f->size - at));
    f->metadata = calloc((size_t)count * 2 + 1, sizeof(char *));
    if (!f->metadata) return cg_error(CG_ERR_NOMEM, "out of memory");
    f->hdr.num_metadata = count;
    for (int i = 0; i < 2 * count; i++)
      if ((rc = read_string(f, &at, false, &f->metadata[i], i % 2 ? "a metadata value" : "a metadata key")))
        return rc;
  }
  if (version > 1) {
    if ((rc = need(f, at, SYNC_SIZE, "the sync marker"))) return rc;
    memcpy(f->hdr.sync, f->data + at, SYNC_SIZE);
    f->hdr.has_sync = true;
    at += SYNC_SIZE;
  }
  f->hdr.version = version;
  f->hdr.key_class = f->key_class;
  f->hdr.value_class = f->value_class;
  f->hdr.compression = block ? CG_SEQFILE_BLOCK : compressed ? CG_SEQFILE_RECORD : CG_SEQFILE_NONE;
  f->hdr.codec = f->codec;
  f->hdr.codec_supported = !compressed || strcmp(f->codec, DEFAULT_CODEC) == 0 || strcmp(f->codec, GZIP_CODEC) == 0;
  f->hdr.metadata = (const char *const *)f->metadata;
  f->hdr.data_offset = at;
  f->key_kind = class_of(f->key_class);
  f->value_kind = class_of(f->value_class);
  return CG_OK;
}

int cg_seqfile_open(const char *path, cg_seqfile **out) {
  *out = NULL;
  cg_seqfile *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    cg_seqfile_close(f);
    return cg_error(CG_ERR_IO, "cannot open SequenceFile '%s': %s", path, strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    cg_seqfile_close(f);
    return cg_error(CG_ERR_IO, "cannot open SequenceFile '%s': not a regular file", path);
  }
  f->size = (size_t)st.st_size;
  static const uint8_t empty[1];
  f->data = empty;
  if (f->size > 0) {
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      close(fd);
      cg_seqfile_close(f);
      return cg_error(CG_ERR_IO, "cannot map SequenceFile '%s': %s", path, strerror(e));
    }
    f->data = m;
    f->mapped = f->size;
  }
  close(fd);
  int rc = parse_header(f);
  if (rc) {
    cg_seqfile_close(f);
    return rc;
  }
  cg_seqfile_rewind(f);
  *out = f;
  return CG_OK;
}

void cg_seqfile_close(cg_seqfile *f) {
  if (!f) return;
  if (f->mapped) munmap((void *)f->data, f->mapped);
  free(f->path);
  free(f->key_class);
  free(f->value_class);
  free(f->codec);
  if (f->metadata)
    for (int i = 0; i < 2 * f->hdr.num_metadata; i++) free(f->metadata[i]);
  free(f->metadata);
  buffer_free(&f->value_buf);
  for (int i = 0; i < 4; i++) buffer_free(&f->parts[i]);
  free(f->entries);
  free(f);
}

const cg_seqfile_header *cg_seqfile_get_header(const cg_seqfile *f) { return &f->hdr; }
const char *cg_seqfile_path(const cg_seqfile *f) { return f->path; }
uint64_t cg_seqfile_size(const cg_seqfile *f) { return f->size; }

void cg_seqfile_rewind(cg_seqfile *f) {
  f->next = f->hdr.data_offset;
  f->in_block = false;
  f->block_count = f->block_index = 0;
}

/* ---- framing ---- */

/* Reads a sync escape's 16 bytes at *at (just after the -1) and checks them. */
static int check_sync(const cg_seqfile *f, uint64_t *at) {
  int rc = need(f, *at, SYNC_SIZE, "the sync marker");
  if (rc) return rc;
  if (memcmp(f->data + *at, f->hdr.sync, SYNC_SIZE) != 0)
    return corrupt(f, *at, "sync marker does not match the header's");
  *at += SYNC_SIZE;
  return CG_OK;
}

/* The record starting at or after *at (sync escapes skipped): 1 and its offset and
 * lengths, or 0 at the end of the file. *at moves past it. */
static int record_frame(const cg_seqfile *f, uint64_t *at, uint64_t *start, int32_t *rec_len, int32_t *key_len) {
  for (;;) {
    if (*at == f->size) return 0;
    uint64_t here = *at;
    int32_t len;
    int rc = read_int(f, at, &len, "the record length");
    if (rc) return rc;
    if (len == SYNC_ESCAPE && f->hdr.has_sync) {
      if ((rc = check_sync(f, at))) return rc;
      continue;
    }
    if (len < 0) return corrupt(f, here, "negative record length %d", len);
    int32_t klen;
    if ((rc = read_int(f, at, &klen, "the key length"))) return rc;
    if (klen < 0 || klen > len) return corrupt(f, here + 4, "key length %d outside the record length %d", klen, len);
    if ((rc = need(f, *at, (uint64_t)len, "the record"))) return rc;
    *start = here;
    *rec_len = len;
    *key_len = klen;
    *at += (uint64_t)len;
    return 1;
  }
}

typedef struct block_frame {
  uint32_t count;
  uint64_t part_offset[4];
  size_t part_len[4];
  uint64_t end;
} block_frame;

static const char *const part_names[4] = {"the block's key lengths", "the block's keys", "the block's value lengths",
                                          "the block's values"};

static int read_block_frame(const cg_seqfile *f, uint64_t at, block_frame *b) {
  int32_t escape;
  uint64_t start = at;
  int rc = read_int(f, &at, &escape, "the block's sync escape");
  if (rc) return rc;
  if (escape != SYNC_ESCAPE) return corrupt(f, start, "a block must start with a sync escape (-1), found %d", escape);
  if ((rc = check_sync(f, &at))) return rc;
  int64_t count = 0; /* set by read_vlong on success (zeroed for gcc's flow analysis) */
  uint64_t count_at = at;
  if ((rc = read_vlong(f, &at, &count, "the block's record count"))) return rc;
  if (count < 0 || count > INT32_MAX) return corrupt(f, count_at, "block record count %lld", (long long)count);
  b->count = (uint32_t)count;
  for (int i = 0; i < 4; i++) {
    int64_t len = 0; /* as count */
    uint64_t len_at = at;
    if ((rc = read_vlong(f, &at, &len, part_names[i]))) return rc;
    if (len < 0) return corrupt(f, len_at, "%s have a negative length (%lld)", part_names[i], (long long)len);
    if ((rc = need(f, at, (uint64_t)len, part_names[i]))) return rc;
    b->part_offset[i] = at;
    b->part_len[i] = (size_t)len;
    at += (uint64_t)len;
  }
  /* every record takes at least one byte of key lengths, and deflate expands at most ~1032:1 */
  if ((uint64_t)b->count > (uint64_t)b->part_len[0] * 1100 + 1024)
    return corrupt(f, count_at, "block claims %u records but its key lengths take only %zu compressed bytes",
                   b->count, b->part_len[0]);
  b->end = at;
  return CG_OK;
}

int cg_seqfile_skip(cg_seqfile *f, cg_seqfile_pos *pos) {
  if (f->hdr.compression == CG_SEQFILE_BLOCK) {
    while (!f->in_block || f->block_index >= f->block_count) {
      if (f->next == f->size) return 0;
      block_frame b;
      int rc = read_block_frame(f, f->next, &b);
      if (rc) return rc;
      f->block_offset = f->next;
      f->block_count = b.count;
      f->block_index = 0;
      f->in_block = true;
      f->next = b.end;
    }
    pos->offset = f->block_offset;
    pos->index = f->block_index++;
    return 1;
  }
  uint64_t start;
  int32_t len, klen;
  int rc = record_frame(f, &f->next, &start, &len, &klen);
  if (rc <= 0) return rc;
  pos->offset = start;
  pos->index = 0;
  return 1;
}

/* ---- decompression ---- */

/* Inflates `len` bytes at file offset `at` (zlib or gzip, concatenated members allowed) into out. */
static int inflate_into(const cg_seqfile *f, uint64_t at, size_t len, buffer *out, const char *what) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return cg_error(CG_ERR_NOMEM, "out of memory (zlib)");
  out->len = 0;
  size_t guess = len < 4096 ? 4096 : len * 4;
  int rc = buffer_reserve(out, guess < MAX_DECOMPRESSED ? guess : MAX_DECOMPRESSED);
  zs.next_in = (Bytef *)(f->data + at);
  size_t in_left = len;
  while (!rc) {
    if (out->len == out->cap) {
      if (out->cap >= MAX_DECOMPRESSED) {
        rc = corrupt(f, at, "%s decompress to more than %zu bytes", what, MAX_DECOMPRESSED);
        break;
      }
      size_t want = out->cap * 2 < MAX_DECOMPRESSED ? out->cap * 2 : MAX_DECOMPRESSED;
      if ((rc = buffer_reserve(out, want))) break;
    }
    uInt in_chunk = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
    size_t out_room = out->cap - out->len;
    uInt out_chunk = out_room > UINT32_MAX ? UINT32_MAX : (uInt)out_room;
    zs.avail_in = in_chunk;
    zs.next_out = out->data + out->len;
    zs.avail_out = out_chunk;
    int z = inflate(&zs, Z_NO_FLUSH);
    in_left -= in_chunk - zs.avail_in;
    out->len += out_chunk - zs.avail_out;
    if (z == Z_STREAM_END) {
      if (in_left == 0) break;
      if (inflateReset(&zs) != Z_OK) rc = corrupt(f, at, "%s: zlib cannot restart", what);
      continue;
    }
    if (z == Z_OK) continue;
    if (z == Z_BUF_ERROR && zs.avail_out == 0) continue;
    if (z == Z_BUF_ERROR && in_left == 0) {
      rc = corrupt(f, at + len, "%s end in the middle of their compressed stream", what);
      break;
    }
    rc = corrupt(f, at + (len - in_left), "%s cannot be decompressed: %s", what, zs.msg ? zs.msg : "zlib error");
  }
  inflateEnd(&zs);
  return rc;
}

/* The payload of a serialized Text or BytesWritable, which must fill the bytes exactly. */
static int payload(const cg_seqfile *f, writable_class kind, const uint8_t *p, size_t n, const uint8_t **out,
                   size_t *out_len, uint64_t at, const char *what) {
  if (kind == CLASS_TEXT) {
    int64_t len;
    size_t used = cg_seqfile_read_vlong(p, n, &len);
    if (!used || len < 0 || (uint64_t)len != n - used)
      return corrupt(f, at, "%s (%zu bytes) is not a valid Text", what, n);
    *out = p + used;
    *out_len = (size_t)len;
  } else if (kind == CLASS_BYTES) {
    if (n < 4 || be32(p) < 0 || (uint64_t)be32(p) != n - 4)
      return corrupt(f, at, "%s (%zu bytes) is not a valid BytesWritable", what, n);
    *out = p + 4;
    *out_len = n - 4;
  } else {
    *out = p;
    *out_len = n;
  }
  return CG_OK;
}

/* Parses n vint lengths from `lens` into the entries' len fields (`value` selects which). */
static int block_lengths(const cg_seqfile *f, uint64_t at, const buffer *lens, const buffer *data, uint32_t n,
                         bool value) {
  size_t used = 0, total = 0;
  for (uint32_t i = 0; i < n; i++) {
    int64_t len;
    size_t k = cg_seqfile_read_vlong(lens->data + used, lens->len - used, &len);
    if (!k) return corrupt(f, at, "block holds %u records but lengths for only %u", n, i);
    used += k;
    if (len < 0 || (uint64_t)len > data->len - total)
      return corrupt(f, at, "record %u of the block: %s length %lld exceeds the %zu bytes left", i,
                     value ? "value" : "key", (long long)len, data->len - total);
    block_entry *e = &f->entries[i];
    if (value) e->value_start = total, e->value_len = (size_t)len;
    else e->key_start = total, e->key_len = (size_t)len;
    total += (size_t)len;
  }
  if (used != lens->len || total != data->len)
    return corrupt(f, at, "block of %u records has %zu bytes of %s it does not account for", n,
                   used != lens->len ? lens->len - used : data->len - total, value ? "values" : "keys");
  return CG_OK;
}

static int load_block(cg_seqfile *f, uint64_t offset) {
  if (f->cache_valid && f->cache_offset == offset) return CG_OK;
  f->cache_valid = false;
  block_frame b;
  int rc = read_block_frame(f, offset, &b);
  if (rc) return rc;
  for (int i = 0; i < 4 && !rc; i++) rc = inflate_into(f, b.part_offset[i], b.part_len[i], &f->parts[i], part_names[i]);
  if (rc) return rc;
  /* each record's key length takes at least one byte: bound the count before allocating */
  if (b.count > f->parts[0].len)
    return corrupt(f, offset, "block claims %u records but has %zu bytes of key lengths", b.count, f->parts[0].len);
  if (b.count > f->entries_cap) {
    block_entry *e = realloc(f->entries, (size_t)b.count * sizeof *e);
    if (!e) return cg_error(CG_ERR_NOMEM, "out of memory");
    f->entries = e;
    f->entries_cap = b.count;
  }
  if ((rc = block_lengths(f, offset, &f->parts[0], &f->parts[1], b.count, false))) return rc;
  if ((rc = block_lengths(f, offset, &f->parts[2], &f->parts[3], b.count, true))) return rc;
  f->cache_valid = true;
  f->cache_offset = offset;
  f->cache_count = b.count;
  return CG_OK;
}

int cg_seqfile_read_at(cg_seqfile *f, cg_seqfile_pos pos, cg_seqfile_record *rec) {
  memset(rec, 0, sizeof *rec);
  rec->pos = pos;
  if (!f->hdr.codec_supported)
    return cg_error(CG_ERR_UNSUPPORTED,
                    "SequenceFile '%s': codec %s is not supported (only DefaultCodec and GzipCodec are)", f->path,
                    f->codec);
  int rc;
  if (f->hdr.compression == CG_SEQFILE_BLOCK) {
    if ((rc = load_block(f, pos.offset))) return rc;
    if (pos.index >= f->cache_count)
      return cg_error(CG_ERR_INVALID, "SequenceFile '%s': block at byte %llu has no record %u", f->path,
                      (unsigned long long)pos.offset, pos.index);
    const block_entry *e = &f->entries[pos.index];
    rec->raw_key = f->parts[1].data + e->key_start;
    rec->raw_key_len = e->key_len;
    rec->raw_value = f->parts[3].data + e->value_start;
    rec->raw_value_len = e->value_len;
  } else {
    uint64_t at = pos.offset, start;
    int32_t len, klen;
    rc = record_frame(f, &at, &start, &len, &klen);
    if (rc < 0) return rc;
    if (rc == 0 || start != pos.offset)
      return cg_error(CG_ERR_INVALID, "SequenceFile '%s': no record starts at byte %llu", f->path,
                      (unsigned long long)pos.offset);
    const uint8_t *body = f->data + start + 8;
    rec->raw_key = body;
    rec->raw_key_len = (size_t)klen;
    if (f->hdr.compression == CG_SEQFILE_RECORD) {
      if ((rc = inflate_into(f, start + 8 + (uint64_t)klen, (size_t)(len - klen), &f->value_buf, "the value")))
        return rc;
      rec->raw_value = f->value_buf.data;
      rec->raw_value_len = f->value_buf.len;
    } else {
      rec->raw_value = body + klen;
      rec->raw_value_len = (size_t)(len - klen);
    }
  }
  rc = payload(f, f->key_kind, rec->raw_key, rec->raw_key_len, &rec->key, &rec->key_len, pos.offset,
               "the record's key");
  if (!rc)
    rc = payload(f, f->value_kind, rec->raw_value, rec->raw_value_len, &rec->value, &rec->value_len, pos.offset,
                 "the record's value");
  return rc;
}

int cg_seqfile_next(cg_seqfile *f, cg_seqfile_record *rec) {
  cg_seqfile_pos pos;
  int rc = cg_seqfile_skip(f, &pos);
  if (rc <= 0) return rc;
  rc = cg_seqfile_read_at(f, pos, rec);
  return rc ? rc : 1;
}

/* ---- writer ---- */

struct cg_seqfile_writer {
  char *path;
  FILE *fp;
  cg_seqfile_compression compression;
  uint8_t sync[SYNC_SIZE];
  uint64_t written, last_sync;
  buffer parts[4]; /* block mode: key lengths, keys, value lengths, values */
  uint32_t buffered;
  buffer scratch, record;
};

static int w_write(cg_seqfile_writer *w, const void *p, size_t n) {
  if (n && fwrite(p, 1, n, w->fp) != n)
    return cg_error(CG_ERR_IO, "cannot write SequenceFile '%s': %s", w->path, strerror(errno));
  w->written += n;
  return CG_OK;
}

static int w_int(cg_seqfile_writer *w, int32_t v) {
  uint8_t b[4];
  put_be32(b, v);
  return w_write(w, b, 4);
}

static int w_vlong(cg_seqfile_writer *w, int64_t v) {
  uint8_t b[9];
  return w_write(w, b, cg_seqfile_write_vlong(b, v));
}

static int w_text(cg_seqfile_writer *w, const char *s) {
  int rc = w_vlong(w, (int64_t)strlen(s));
  return rc ? rc : w_write(w, s, strlen(s));
}

static int w_sync(cg_seqfile_writer *w) {
  int rc = w_int(w, SYNC_ESCAPE);
  if (!rc) rc = w_write(w, w->sync, SYNC_SIZE);
  w->last_sync = w->written;
  return rc;
}

/* zlib-compresses n bytes into w->scratch. */
static int w_deflate(cg_seqfile_writer *w, const uint8_t *p, size_t n) {
  if (n > UINT32_MAX / 2) return cg_error(CG_ERR_INVALID, "SequenceFile '%s': a compressed buffer over 2 GiB", w->path);
  uLongf cap = compressBound((uLong)n);
  int rc = buffer_reserve(&w->scratch, cap);
  if (rc) return rc;
  if (compress2(w->scratch.data, &cap, p ? p : (const uint8_t *)"", (uLong)n, Z_DEFAULT_COMPRESSION) != Z_OK)
    return cg_error(CG_ERR_NOMEM, "zlib cannot compress %zu bytes", n);
  w->scratch.len = cap;
  return CG_OK;
}

static void fill_sync(uint8_t sync[SYNC_SIZE]) {
  if (getentropy(sync, SYNC_SIZE) == 0) return;
  /* no entropy source: any 16 bytes unlikely to occur in the data will do */
  uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)sync;
  for (int i = 0; i < SYNC_SIZE; i++) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    sync[i] = (uint8_t)((z ^ (z >> 31)) >> 17);
  }
}

int cg_seqfile_writer_open(const char *path, cg_seqfile_compression compression, cg_seqfile_writer **out) {
  *out = NULL;
  cg_seqfile_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->path = strdup(path))) {
    free(w);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  w->compression = compression;
  w->fp = fopen(path, "wbx");
  if (!w->fp) {
    int e = errno;
    free(w->path);
    free(w);
    if (e == EEXIST) return cg_error(CG_ERR_IO, "SequenceFile '%s' already exists (not overwritten)", path);
    return cg_error(CG_ERR_IO, "cannot create SequenceFile '%s': %s", path, strerror(e));
  }
  fill_sync(w->sync);
  const uint8_t magic[4] = {'S', 'E', 'Q', 6};
  uint8_t flags[2] = {compression != CG_SEQFILE_NONE, compression == CG_SEQFILE_BLOCK};
  int rc = w_write(w, magic, 4);
  if (!rc) rc = w_text(w, TEXT_CLASS);
  if (!rc) rc = w_text(w, BYTES_CLASS);
  if (!rc) rc = w_write(w, flags, 2);
  if (!rc && compression != CG_SEQFILE_NONE) rc = w_text(w, DEFAULT_CODEC);
  if (!rc) rc = w_int(w, 0); /* no metadata */
  if (!rc) rc = w_write(w, w->sync, SYNC_SIZE);
  w->last_sync = w->written;
  if (rc) {
    cg_seqfile_writer_abort(w);
    return rc;
  }
  *out = w;
  return CG_OK;
}

static int flush_block(cg_seqfile_writer *w) {
  if (!w->buffered) return CG_OK;
  int rc = w_sync(w);
  if (!rc) rc = w_vlong(w, w->buffered);
  for (int i = 0; i < 4 && !rc; i++) {
    rc = w_deflate(w, w->parts[i].data, w->parts[i].len);
    if (!rc) rc = w_vlong(w, (int64_t)w->scratch.len);
    if (!rc) rc = w_write(w, w->scratch.data, w->scratch.len);
    w->parts[i].len = 0;
  }
  w->buffered = 0;
  return rc;
}

int cg_seqfile_writer_append(cg_seqfile_writer *w, const char *key, size_t key_len, const void *value,
                             size_t value_len) {
  if (key_len > INT32_MAX / 2 || value_len > INT32_MAX / 2)
    return cg_error(CG_ERR_INVALID, "SequenceFile '%s': record too large (key %zu, value %zu bytes)", w->path, key_len,
                    value_len);
  /* the serialized key (Text) and value (BytesWritable) */
  uint8_t head[9];
  size_t head_len = cg_seqfile_write_vlong(head, (int64_t)key_len);
  size_t key_ser = head_len + key_len, value_ser = 4 + value_len;
  uint8_t vhead[4];
  put_be32(vhead, (int32_t)value_len);
  int rc;
  if (w->compression == CG_SEQFILE_BLOCK) {
    uint8_t v[9];
    rc = buffer_append(&w->parts[0], v, cg_seqfile_write_vlong(v, (int64_t)key_ser));
    if (!rc) rc = buffer_append(&w->parts[1], head, head_len);
    if (!rc) rc = buffer_append(&w->parts[1], key, key_len);
    if (!rc) rc = buffer_append(&w->parts[2], v, cg_seqfile_write_vlong(v, (int64_t)value_ser));
    if (!rc) rc = buffer_append(&w->parts[3], vhead, 4);
    if (!rc) rc = buffer_append(&w->parts[3], value, value_len);
    if (rc) return rc;
    w->buffered++;
    if (w->parts[1].len + w->parts[3].len >= BLOCK_TARGET) return flush_block(w);
    return CG_OK;
  }
  if (w->written >= w->last_sync + SYNC_INTERVAL && (rc = w_sync(w))) return rc;
  const uint8_t *stored = NULL;
  size_t stored_len = value_ser;
  if (w->compression == CG_SEQFILE_RECORD) {
    w->record.len = 0;
    rc = buffer_append(&w->record, vhead, 4);
    if (!rc) rc = buffer_append(&w->record, value, value_len);
    if (!rc) rc = w_deflate(w, w->record.data, w->record.len);
    if (rc) return rc;
    stored = w->scratch.data;
    stored_len = w->scratch.len;
  }
  if (key_ser + stored_len > INT32_MAX) return cg_error(CG_ERR_INVALID, "SequenceFile '%s': record too large", w->path);
  rc = w_int(w, (int32_t)(key_ser + stored_len));
  if (!rc) rc = w_int(w, (int32_t)key_ser);
  if (!rc) rc = w_write(w, head, head_len);
  if (!rc) rc = w_write(w, key, key_len);
  if (stored) {
    if (!rc) rc = w_write(w, stored, stored_len);
  } else {
    if (!rc) rc = w_write(w, vhead, 4);
    if (!rc) rc = w_write(w, value, value_len);
  }
  return rc;
}

static void writer_free(cg_seqfile_writer *w) {
  for (int i = 0; i < 4; i++) buffer_free(&w->parts[i]);
  buffer_free(&w->scratch);
  buffer_free(&w->record);
  free(w->path);
  free(w);
}

int cg_seqfile_writer_close(cg_seqfile_writer *w) {
  int rc = w->compression == CG_SEQFILE_BLOCK ? flush_block(w) : CG_OK;
  if (!rc && (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0))
    rc = cg_error(CG_ERR_IO, "cannot write SequenceFile '%s': %s", w->path, strerror(errno));
  if (fclose(w->fp) != 0 && !rc) rc = cg_error(CG_ERR_IO, "cannot close SequenceFile '%s': %s", w->path, strerror(errno));
  if (rc) remove(w->path);
  writer_free(w);
  return rc;
}

void cg_seqfile_writer_abort(cg_seqfile_writer *w) {
  if (!w) return;
  fclose(w->fp);
  remove(w->path);
  writer_free(w);
}
