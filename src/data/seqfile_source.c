/* The "seqfile" data source over the SequenceFile reader: every record's position
 * is found at open (framing checked, nothing decompressed), and a record is read,
 * decompressed and classified on demand. Conventions in seqfile_source.h. */
#include "data/seqfile_source.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caffegrid/error.h"
#include "caffegrid/seqfile.h"
#include "proto/caffe.pb-c.h"

typedef struct entry {
  cg_seqfile_pos pos;
  uint32_t file;
} entry;

typedef struct seq_state {
  char *location;
  cg_seqfile **files;
  int num_files;
  entry *entries;
  size_t count, cap;
  char *id;
  size_t id_cap;
  uint8_t *pixels;
  size_t pixels_cap;
} seq_state;

static bool parse_number(const char *s, size_t n, float *out) {
  if (n == 0 || n > 63) return false;
  char buf[64];
  memcpy(buf, s, n);
  buf[n] = 0;
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (end != buf + n || errno || !isfinite(v) || buf[0] == ' ' || buf[0] == '\t') return false;
  *out = (float)v;
  return true;
}

bool cg_seqfile_key_label(const char *key, size_t len, size_t *id_len, float *label) {
  *id_len = len;
  const char seps[2] = {'\t', ' '};
  for (int s = 0; s < 2; s++) {
    for (size_t i = len; i-- > 0;) {
      if (key[i] != seps[s]) continue;
      if (!parse_number(key + i + 1, len - i - 1, label)) return false;
      *id_len = i;
      return true;
    }
  }
  return parse_number(key, len, label);
}

static void seq_close(void *state) {
  seq_state *s = state;
  if (!s) return;
  for (int i = 0; i < s->num_files; i++) cg_seqfile_close(s->files[i]);
  free(s->files);
  free(s->entries);
  free(s->location);
  free(s->id);
  free(s->pixels);
  free(s);
}

static int add_file(seq_state *s, const char *path) {
  cg_seqfile **files = realloc(s->files, (size_t)(s->num_files + 1) * sizeof *files);
  if (!files) return cg_error(CG_ERR_NOMEM, "out of memory");
  s->files = files;
  int rc = cg_seqfile_open(path, &s->files[s->num_files]);
  if (rc) return rc;
  cg_seqfile *f = s->files[s->num_files++];
  for (;;) {
    cg_seqfile_pos pos;
    rc = cg_seqfile_skip(f, &pos);
    if (rc <= 0) return rc;
    if (s->count == s->cap) {
      size_t cap = s->cap ? s->cap * 2 : 1024;
      entry *e = realloc(s->entries, cap * sizeof *e);
      if (!e) return cg_error(CG_ERR_NOMEM, "out of memory");
      s->entries = e;
      s->cap = cap;
    }
    s->entries[s->count++] = (entry){.pos = pos, .file = (uint32_t)(s->num_files - 1)};
  }
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The part files of a directory, in name order. */
static int add_directory(seq_state *s, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return cg_error(CG_ERR_IO, "cannot open directory '%s': %s", dir, strerror(errno));
  char **names = NULL;
  size_t n = 0;
  int rc = CG_OK;
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    if (de->d_name[0] == '.' || de->d_name[0] == '_') continue;
    size_t len = strlen(dir) + strlen(de->d_name) + 2;
    char *path = malloc(len);
    char **grown = realloc(names, (n + 1) * sizeof *names);
    if (!path || !grown) {
      free(path);
      if (grown) names = grown;
      rc = cg_error(CG_ERR_NOMEM, "out of memory");
      break;
    }
    names = grown;
    snprintf(path, len, "%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
      free(path);
      continue;
    }
    names[n++] = path;
  }
  closedir(d);
  if (names) qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n && !rc; i++) rc = add_file(s, names[i]);
  if (!rc && n == 0) rc = cg_error(CG_ERR_INVALID, "directory '%s' holds no SequenceFiles", dir);
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

static int seq_open(const char *location, const void *options, void **state) {
  (void)options;
  *state = NULL;
  seq_state *s = calloc(1, sizeof *s);
  if (!s || !(s->location = strdup(location))) {
    free(s);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  struct stat st;
  int rc;
  if (stat(location, &st) != 0) rc = cg_error(CG_ERR_IO, "cannot open SequenceFile '%s': %s", location, strerror(errno));
  else if (S_ISDIR(st.st_mode)) rc = add_directory(s, location);
  else rc = add_file(s, location);
  if (!rc && s->count == 0) rc = cg_error(CG_ERR_INVALID, "SequenceFile '%s' holds no records", location);
  if (rc) {
    seq_close(s);
    return rc;
  }
  *state = s;
  return CG_OK;
}

static size_t seq_count(void *state) { return ((seq_state *)state)->count; }

static int reserve(void **p, size_t *cap, size_t n) {
  if (n <= *cap) return CG_OK;
  void *q = realloc(*p, n);
  if (!q) return cg_error(CG_ERR_NOMEM, "out of memory (%zu bytes)", n);
  *p = q;
  *cap = n;
  return CG_OK;
}

static bool printable(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f) return false;
  return true;
}

/* The record's id into s->id (NUL-terminated): text when printable, else hex. */
static int make_id(seq_state *s, const uint8_t *key, size_t n, bool text) {
  if (text || printable(key, n)) {
    int rc = reserve((void **)&s->id, &s->id_cap, n + 1);
    if (rc) return rc;
    memcpy(s->id, key, n);
    s->id[n] = 0;
    /* a NUL inside a Text key would cut the id short: show it as '?' */
    for (size_t i = 0; i < n; i++)
      if (!s->id[i]) s->id[i] = '?';
    return CG_OK;
  }
  size_t shown = n < 32 ? n : 32;
  int rc = reserve((void **)&s->id, &s->id_cap, 2 * shown + 4);
  if (rc) return rc;
  for (size_t i = 0; i < shown; i++) snprintf(s->id + 2 * i, 3, "%02x", key[i]);
  strcpy(s->id + 2 * shown, n > shown ? "..." : "");
  return CG_OK;
}

static bool is_image(const uint8_t *p, size_t n) {
  if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return true;        /* JPEG */
  if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return true;              /* PNG */
  if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) return true;
  if (n >= 14 && p[0] == 'B' && p[1] == 'M') return true;                          /* BMP */
  return false;
}

static uint32_t be32u(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* BigDL: width, height, then H x W x 3 BGR bytes; out gets them channel-first. */
static bool bigdl_shape(const uint8_t *p, size_t n, int *w, int *h) {
  if (n < 8) return false;
  uint32_t width = be32u(p), height = be32u(p + 4);
  if (width == 0 || height == 0 || width > 65536 || height > 65536) return false;
  if ((uint64_t)width * height * 3 != n - 8) return false;
  *w = (int)width, *h = (int)height;
  return true;
}

static bool plausible_datum(const Caffe__Datum *d) {
  if (d->encoded) return d->data.len > 0;
  if (d->channels <= 0 || d->height <= 0 || d->width <= 0) return false;
  uint64_t count = (uint64_t)d->channels * (uint64_t)d->height * (uint64_t)d->width;
  return d->data.len == count || d->n_float_data == count;
}

static int seq_get(void *state, size_t index, cg_record *out) {
  seq_state *s = state;
  memset(out, 0, sizeof *out);
  if (index >= s->count)
    return cg_error(CG_ERR_INVALID, "SequenceFile '%s': record %zu of %zu", s->location, index, s->count);
  const entry *e = &s->entries[index];
  cg_seqfile *f = s->files[e->file];
  cg_seqfile_record rec;
  int rc = cg_seqfile_read_at(f, e->pos, &rec);
  if (rc) return rc;
  const cg_seqfile_header *h = cg_seqfile_get_header(f);
  bool text_key = strcmp(h->key_class, "org.apache.hadoop.io.Text") == 0;
  size_t id_len = rec.key_len;
  float label = 0;
  bool has_label = (text_key || printable(rec.key, rec.key_len)) &&
                   cg_seqfile_key_label((const char *)rec.key, rec.key_len, &id_len, &label);
  if ((rc = make_id(s, rec.key, id_len, text_key))) return rc;
  out->id = s->id;
  out->label = label;
  out->has_label = has_label;
  const uint8_t *v = rec.value;
  size_t n = rec.value_len;
  int width, height;
  if (is_image(v, n)) {
    out->kind = CG_RECORD_IMAGE;
    out->bytes = v;
    out->num_bytes = n;
    return CG_OK;
  }
  if (bigdl_shape(v, n, &width, &height)) {
    size_t plane = (size_t)width * (size_t)height;
    if ((rc = reserve((void **)&s->pixels, &s->pixels_cap, plane * 3))) return rc;
    const uint8_t *src = v + 8;
    for (size_t i = 0; i < plane; i++)
      for (int c = 0; c < 3; c++) s->pixels[(size_t)c * plane + i] = src[i * 3 + (size_t)c];
    out->kind = CG_RECORD_PIXELS;
    out->bytes = s->pixels;
    out->num_bytes = plane * 3;
    out->channels = 3, out->height = height, out->width = width;
    return CG_OK;
  }
  Caffe__Datum *d = caffe__datum__unpack(NULL, n, v);
  if (d && plausible_datum(d)) {
    out->kind = CG_RECORD_DATUM;
    out->bytes = v;
    out->num_bytes = n;
    if (d->has_label) out->label = (float)d->label, out->has_label = true;
    protobuf_c_message_free_unpacked(&d->base, NULL);
    return CG_OK;
  }
  if (d) protobuf_c_message_free_unpacked(&d->base, NULL);
  return cg_error(CG_ERR_UNSUPPORTED,
                  "SequenceFile '%s': record %zu ('%s', byte %llu): the %zu-byte value is not an image (JPEG, PNG, GIF, "
                  "BMP), BigDL pixels or a caffe.Datum",
                  cg_seqfile_path(f), index, s->id, (unsigned long long)e->pos.offset, n);
}

const cg_source_ops cg_source_seqfile = {
    .name = "seqfile", .open = seq_open, .count = seq_count, .get = seq_get, .close = seq_close,
};
