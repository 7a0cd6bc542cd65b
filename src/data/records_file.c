/* caffegrid/records_file.h: the writer, and the "records" source over a memory map.
 *
 * Layout: "CGREC1\n\0", then records, each 8-byte aligned: a 32-byte header (id
 * length, kind, has_label, label, channels, height, width, payload length), the id
 * and a NUL, padding to 8, the payload, padding to 8; then the index (one uint64
 * offset per record) and the footer: count, index offset, "CGRECEND". */
#include "caffegrid/records_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffegrid/error.h"

static const char file_magic[8] = "CGREC1\n";
static const char end_magic[8] = {'C', 'G', 'R', 'E', 'C', 'E', 'N', 'D'};
enum { FOOTER_BYTES = 24, MAX_ID = 1 << 20 };

typedef struct record_header {
  uint32_t id_len;
  uint8_t kind, has_label;
  uint16_t reserved;
  float label;
  int32_t channels, height, width;
  uint64_t payload_len;
} record_header;
_Static_assert(sizeof(record_header) == 32, "record_header is written as 32 bytes");

struct cg_records_writer {
  FILE *f;
  char *path;
  uint64_t offset;
  uint64_t *index;
  size_t count, cap;
};

static size_t pad8(uint64_t n) { return (size_t)((8 - n % 8) % 8); }

int cg_records_writer_open(const char *path, cg_records_writer **out) {
  *out = NULL;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return cg_error(CG_ERR_IO, "cannot create records file '%s': %s", path, strerror(errno));
  cg_records_writer *w = calloc(1, sizeof *w);
  if (w) w->f = fdopen(fd, "wb");
  if (w) w->path = strdup(path);
  if (!w || !w->f || !w->path) {
    if (w && w->f) fclose(w->f);
    else close(fd);
    unlink(path);
    if (w) free(w->path);
    free(w);
    return cg_error(CG_ERR_NOMEM, "out of memory opening '%s'", path);
  }
  w->offset = sizeof file_magic;
  if (fwrite(file_magic, sizeof file_magic, 1, w->f) != 1) {
    cg_records_writer_abort(w);
    return cg_error(CG_ERR_IO, "cannot write records file '%s': %s", path, strerror(errno));
  }
  *out = w;
  return CG_OK;
}

static int write_bytes(cg_records_writer *w, const void *p, size_t n) {
  static const uint8_t zeros[8];
  if (n && fwrite(p ? p : zeros, n, 1, w->f) != 1)
    return cg_error(CG_ERR_IO, "cannot write records file '%s': %s", w->path, strerror(errno));
  w->offset += n;
  return CG_OK;
}

static int check_record(const cg_records_writer *w, const cg_record *r, const char *id, uint64_t *payload) {
  size_t values = (size_t)(r->channels > 0 ? r->channels : 0) * (size_t)(r->height > 0 ? r->height : 0) *
                  (size_t)(r->width > 0 ? r->width : 0);
  switch (r->kind) {
  case CG_RECORD_DATUM:
  case CG_RECORD_IMAGE: *payload = r->num_bytes; break;
  case CG_RECORD_PIXELS:
    if (!values || values != r->num_bytes)
      return cg_error(CG_ERR_SHAPE, "record '%s' has %zu pixel bytes, its shape %dx%dx%d says %zu", id, r->num_bytes,
                      r->channels, r->height, r->width, values);
    *payload = r->num_bytes;
    break;
  case CG_RECORD_FLOATS:
    if (!values || values != r->num_floats)
      return cg_error(CG_ERR_SHAPE, "record '%s' has %zu values, its shape %dx%dx%d says %zu", id, r->num_floats,
                      r->channels, r->height, r->width, values);
    *payload = (uint64_t)r->num_floats * sizeof(float);
    break;
  default: return cg_error(CG_ERR_INVALID, "record '%s': unknown record kind %d", id, (int)r->kind);
  }
  if (*payload && !(r->kind == CG_RECORD_FLOATS ? (const void *)r->floats : (const void *)r->bytes))
    return cg_error(CG_ERR_INVALID, "record '%s': no data given for its %llu bytes", id, (unsigned long long)*payload);
  (void)w;
  return CG_OK;
}

int cg_records_writer_add(cg_records_writer *w, const cg_record *r) {
  const char *id = r->id ? r->id : "";
  size_t id_len = strlen(id);
  if (id_len > MAX_ID) return cg_error(CG_ERR_INVALID, "a record id of %zu bytes is too long", id_len);
  uint64_t payload = 0;
  int rc = check_record(w, r, id, &payload);
  if (rc) return rc;
  if (w->count == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 1024;
    uint64_t *grown = realloc(w->index, cap * sizeof *grown);
    if (!grown) return cg_error(CG_ERR_NOMEM, "out of memory indexing '%s'", w->path);
    w->index = grown, w->cap = cap;
  }
  record_header h = {.id_len = (uint32_t)id_len, .kind = (uint8_t)r->kind, .has_label = r->has_label,
                     .label = r->label, .channels = r->channels, .height = r->height, .width = r->width,
                     .payload_len = payload};
  uint64_t start = w->offset;
  rc = write_bytes(w, &h, sizeof h);
  if (!rc) rc = write_bytes(w, id, id_len + 1);
  if (!rc) rc = write_bytes(w, NULL, pad8(w->offset));
  if (!rc) rc = write_bytes(w, r->kind == CG_RECORD_FLOATS ? (const void *)r->floats : (const void *)r->bytes, payload);
  if (!rc) rc = write_bytes(w, NULL, pad8(w->offset));
  if (!rc) w->index[w->count++] = start;
  return rc;
}

size_t cg_records_writer_count(const cg_records_writer *w) { return w->count; }

void cg_records_writer_abort(cg_records_writer *w) {
  if (!w) return;
  fclose(w->f);
  unlink(w->path);
  free(w->path);
  free(w->index);
  free(w);
}

int cg_records_writer_close(cg_records_writer *w) {
  uint64_t index_offset = w->offset, count = w->count;
  int rc = write_bytes(w, w->index, count * sizeof(uint64_t));
  if (!rc) rc = write_bytes(w, &count, sizeof count);
  if (!rc) rc = write_bytes(w, &index_offset, sizeof index_offset);
  if (!rc) rc = write_bytes(w, end_magic, sizeof end_magic);
  if (!rc && fflush(w->f) != 0) rc = cg_error(CG_ERR_IO, "cannot write records file '%s': %s", w->path, strerror(errno));
  if (rc) {
    cg_records_writer_abort(w);
    return rc;
  }
  FILE *f = w->f;
  w->f = NULL;
  if (fclose(f) != 0) rc = cg_error(CG_ERR_IO, "cannot write records file '%s': %s", w->path, strerror(errno));
  if (rc) unlink(w->path);
  free(w->path);
  free(w->index);
  free(w);
  return rc;
}

/* ---- the "records" source ---- */

typedef struct records_map {
  const uint8_t *base;
  size_t size;
  const uint64_t *index;
  size_t count;
  char *path;
} records_map;

static void records_close(void *state) {
  records_map *m = state;
  if (!m) return;
  if (m->base) munmap((void *)m->base, m->size);
  free(m->path);
  free(m);
}

static int corrupt(const records_map *m, const char *what) {
  return cg_error(CG_ERR_CORRUPT, "records file '%s' is damaged or cut short: %s", m->path, what);
}

static int records_open(const char *location, const void *options, void **state) {
  (void)options;
  *state = NULL;
  records_map *m = calloc(1, sizeof *m);
  if (!m || !(m->path = strdup(location))) {
    free(m);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  int fd = open(location, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    records_close(m);
    return cg_error(CG_ERR_IO, "cannot open records file '%s': %s", location, strerror(e));
  }
  m->size = (size_t)st.st_size;
  if (m->size >= sizeof file_magic + FOOTER_BYTES) {
    void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    m->base = p == MAP_FAILED ? NULL : p;
  }
  close(fd);
  int rc = CG_OK;
  if (m->size < sizeof file_magic + FOOTER_BYTES || !m->base || memcmp(m->base, file_magic, sizeof file_magic) != 0)
    rc = cg_error(CG_ERR_CORRUPT, "'%s' is not a caffegrid records file", location);
  uint64_t count = 0, index_offset = 0;
  if (!rc) {
    const uint8_t *footer = m->base + m->size - FOOTER_BYTES;
    memcpy(&count, footer, 8);
    memcpy(&index_offset, footer + 8, 8);
    if (memcmp(footer + 16, end_magic, sizeof end_magic) != 0) rc = corrupt(m, "no footer");
    else if (index_offset < sizeof file_magic || index_offset % 8 || index_offset > m->size - FOOTER_BYTES ||
             count != (m->size - FOOTER_BYTES - index_offset) / 8 || (m->size - FOOTER_BYTES - index_offset) % 8)
      rc = corrupt(m, "its index does not fit the file");
  }
  if (rc) {
    records_close(m);
    return rc;
  }
  m->index = (const uint64_t *)(m->base + index_offset);
  m->count = (size_t)count;
  *state = m;
  return CG_OK;
}

static size_t records_count(void *state) { return ((records_map *)state)->count; }

static int records_get(void *state, size_t i, cg_record *out) {
  records_map *m = state;
  memset(out, 0, sizeof *out);
  if (i >= m->count) return cg_error(CG_ERR_INVALID, "records file '%s': record %zu of %zu", m->path, i, m->count);
  uint64_t at = m->index[i], end = (uint64_t)((const uint8_t *)m->index - m->base);
  record_header h;
  if (at % 8 || at < sizeof file_magic || at > end || end - at < sizeof h) return corrupt(m, "a record lies outside it");
  memcpy(&h, m->base + at, sizeof h);
  uint64_t id_at = at + sizeof h, payload_at = id_at + h.id_len + 1;
  payload_at += pad8(payload_at);
  if (h.id_len > MAX_ID || payload_at > end || h.payload_len > end - payload_at || m->base[id_at + h.id_len] != 0)
    return corrupt(m, "a record's lengths run past it");
  out->kind = (cg_record_kind)h.kind;
  out->id = (const char *)m->base + id_at;
  out->label = h.label, out->has_label = h.has_label;
  out->channels = h.channels, out->height = h.height, out->width = h.width;
  const uint8_t *payload = m->base + payload_at;
  size_t values = (size_t)(h.channels > 0 ? h.channels : 0) * (size_t)(h.height > 0 ? h.height : 0) *
                  (size_t)(h.width > 0 ? h.width : 0);
  switch (out->kind) {
  case CG_RECORD_DATUM:
  case CG_RECORD_IMAGE: out->bytes = payload, out->num_bytes = (size_t)h.payload_len; return CG_OK;
  case CG_RECORD_PIXELS:
    if (values != h.payload_len) return corrupt(m, "a record's shape does not match its pixels");
    out->bytes = payload, out->num_bytes = (size_t)h.payload_len;
    return CG_OK;
  case CG_RECORD_FLOATS:
    if ((uint64_t)values * sizeof(float) != h.payload_len) return corrupt(m, "a record's shape does not match its values");
    out->floats = (const float *)payload, out->num_floats = values;
    return CG_OK;
  default: return corrupt(m, "a record of unknown kind");
  }
}

static int records_clone(void *state, void **out) {
  /* the map is read-only: another handle is another open (cheap: one mmap) */
  return records_open(((records_map *)state)->path, NULL, out);
}

const cg_source_ops cg_source_records = {
    .name = "records",
    .open = records_open,
    .count = records_count,
    .get = records_get,
    .clone = records_clone,
    .close = records_close,
};
