/* Caffe's ImageData list file as a cg_source: one "path label" per line, the
 * label being the last space-separated token so that paths may hold spaces
 * (as Caffe's newer parser reads them); blank lines are skipped. Records are
 * the image files' bytes (CG_RECORD_IMAGE), read when asked for; decoding is
 * the transform's job. Clones share the parsed list. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "core/regular_file.h"
#include "caffegrid/source.h"

typedef struct list_entry {
  char *path; /* root_folder + path as written */
  int label;
  int line;
} list_entry;

typedef struct list_shared {
  atomic_int refs;
  char *list_path;
  list_entry *entries;
  size_t count;
} list_shared;

typedef struct list_handle {
  list_shared *shared;
  uint8_t *buf;
  size_t cap;
} list_handle;

static void shared_release(list_shared *s) {
  if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
  for (size_t i = 0; i < s->count; i++) free(s->entries[i].path);
  free(s->entries);
  free(s->list_path);
  free(s);
}

static void list_close(void *state) {
  list_handle *h = state;
  if (!h) return;
  shared_release(h->shared);
  free(h->buf);
  free(h);
}

/* Parses one line (trailing newline and spaces already removed) into e. */
static int parse_line(const char *list, int line_no, char *line, const char *root, list_entry *e) {
  char *space = strrchr(line, ' ');
  char *tab = strrchr(line, '\t');
  if (tab && (!space || tab > space)) space = tab;
  if (!space) return cg_error(CG_ERR_PARSE, "%s:%d: expected 'path label', got '%.200s'", list, line_no, line);
  char *end;
  errno = 0;
  long label = strtol(space + 1, &end, 10);
  if (end == space + 1 || *end || errno || label < -2147483647L - 1 || label > 2147483647L)
    return cg_error(CG_ERR_PARSE, "%s:%d: the label '%.50s' is not an integer", list, line_no, space + 1);
  char *path_end = space;
  while (path_end > line && (path_end[-1] == ' ' || path_end[-1] == '\t')) path_end--;
  if (path_end == line) return cg_error(CG_ERR_PARSE, "%s:%d: no path before the label", list, line_no);
  size_t rl = strlen(root), pl = (size_t)(path_end - line);
  e->path = malloc(rl + pl + 1);
  if (!e->path) return cg_error(CG_ERR_NOMEM, "out of memory");
  memcpy(e->path, root, rl);
  memcpy(e->path + rl, line, pl);
  e->path[rl + pl] = '\0';
  e->label = (int)label;
  e->line = line_no;
  return CG_OK;
}

static int list_open(const char *location, const void *options, void **state) {
  *state = NULL;
  const cg_image_list_options *o = options;
  const char *root = o && o->root_folder ? o->root_folder : "";
  FILE *f = fopen(location, "r");
  if (!f) return cg_error(CG_ERR_IO, "cannot open image list '%s': %s", location, strerror(errno));
  list_handle *h = calloc(1, sizeof *h);
  list_shared *s = calloc(1, sizeof *s);
  if (!h || !s) {
    fclose(f);
    free(h), free(s);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  atomic_init(&s->refs, 1);
  h->shared = s;
  s->list_path = strdup(location);
  size_t cap = 0;
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t len;
  int line_no = 0, rc = CG_OK;
  while (!rc && (len = getline(&line, &line_cap, f)) >= 0) {
    line_no++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
      line[--len] = '\0';
    if (len == 0) continue;
    if (s->count == cap) {
      cap = cap ? cap * 2 : 256;
      list_entry *grown = realloc(s->entries, cap * sizeof *grown);
      if (!grown) {
        rc = cg_error(CG_ERR_NOMEM, "out of memory");
        break;
      }
      s->entries = grown;
    }
    rc = parse_line(location, line_no, line, root, &s->entries[s->count]);
    if (!rc) s->count++;
  }
  free(line);
  fclose(f);
  if (!rc && s->count == 0) rc = cg_error(CG_ERR_INVALID, "image list '%s' holds no images", location);
  if (rc) {
    list_close(h);
    return rc;
  }
  *state = h;
  return CG_OK;
}

static int list_clone(void *state, void **out) {
  list_handle *src = state;
  list_handle *h = calloc(1, sizeof *h);
  if (!h) return cg_error(CG_ERR_NOMEM, "out of memory");
  atomic_fetch_add(&src->shared->refs, 1);
  h->shared = src->shared;
  *out = h;
  return CG_OK;
}

static size_t list_count(void *state) { return ((list_handle *)state)->shared->count; }

static int list_get(void *state, size_t index, cg_record *out) {
  list_handle *h = state;
  const list_entry *e = &h->shared->entries[index];
  FILE *f;
  const char *kind;
  int err = cg_open_regular_file(e->path, &f, &kind);
  if (err < 0)
    return cg_error(CG_ERR_INVALID, "%s:%d: image '%s' is %s, not an image file", h->shared->list_path, e->line,
                    e->path, kind);
  if (err)
    return cg_error(CG_ERR_IO, "%s:%d: cannot open image '%s': %s", h->shared->list_path, e->line, e->path,
                    strerror(err));
  size_t n = 0;
  int rc = CG_OK;
  for (;;) {
    if (n == h->cap) {
      size_t cap = h->cap ? h->cap * 2 : 1 << 16;
      uint8_t *grown = realloc(h->buf, cap);
      if (!grown) {
        rc = cg_error(CG_ERR_NOMEM, "out of memory reading '%s'", e->path);
        break;
      }
      h->buf = grown, h->cap = cap;
    }
    size_t got = fread(h->buf + n, 1, h->cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f))
        rc = cg_error(CG_ERR_IO, "%s:%d: cannot read image '%s': %s", h->shared->list_path, e->line, e->path,
                      strerror(errno));
      break;
    }
  }
  fclose(f);
  if (rc) return rc;
  out->kind = CG_RECORD_IMAGE;
  out->id = e->path;
  out->bytes = h->buf;
  out->num_bytes = n;
  out->label = (float)e->label;
  out->has_label = true;
  return CG_OK;
}

const cg_source_ops cg_source_image_list = {
    .name = "image_list",
    .open = list_open,
    .count = list_count,
    .get = list_get,
    .clone = list_clone,
    .close = list_close,
};
