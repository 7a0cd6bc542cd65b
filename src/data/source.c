/* Source registry and dispatch: the table comes from CG_SOURCE_LIST, a handle
 * pairs a type's ops with its private state. */
#include "caffegrid/source.h"

#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "data/source_list.h"

#define CG_DECLARE_SOURCE(sym) extern const cg_source_ops sym;
CG_SOURCE_LIST(CG_DECLARE_SOURCE)
#undef CG_DECLARE_SOURCE

static const cg_source_ops *const source_table[] = {
#define CG_REFERENCE_SOURCE(sym) &sym,
    CG_SOURCE_LIST(CG_REFERENCE_SOURCE)
#undef CG_REFERENCE_SOURCE
};

struct cg_source {
  const cg_source_ops *ops;
  void *state;
  char *location;
  const void *options;
};

static int wrap(const cg_source_ops *ops, void *state, const char *location, const void *options, cg_source **out) {
  cg_source *s = calloc(1, sizeof *s);
  char *loc = strdup(location);
  if (!s || !loc) {
    free(s);
    free(loc);
    ops->close(state);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  s->ops = ops, s->state = state, s->location = loc, s->options = options;
  *out = s;
  return CG_OK;
}

int cg_source_open(const char *type, const char *location, const void *options, cg_source **out) {
  *out = NULL;
  const cg_source_ops *ops = NULL;
  size_t n = sizeof source_table / sizeof source_table[0];
  for (size_t i = 0; i < n && type; i++)
    if (strcmp(source_table[i]->name, type) == 0) ops = source_table[i];
  if (!ops) {
    char known[256] = "";
    for (size_t i = 0; i < n; i++) {
      if (i) strncat(known, ", ", sizeof known - strlen(known) - 1);
      strncat(known, source_table[i]->name, sizeof known - strlen(known) - 1);
    }
    return cg_error(CG_ERR_UNSUPPORTED, "unknown data source type '%s' (known: %s)", type ? type : "(null)", known);
  }
  if (!location) return cg_error(CG_ERR_INVALID, "%s source: no location given", ops->name);
  void *state = NULL;
  int rc = ops->open(location, options, &state);
  if (rc) return rc;
  return wrap(ops, state, location, options, out);
}

int cg_source_clone(const cg_source *s, cg_source **out) {
  *out = NULL;
  void *state = NULL;
  int rc = s->ops->clone ? s->ops->clone(s->state, &state) : s->ops->open(s->location, s->options, &state);
  if (rc) return rc;
  return wrap(s->ops, state, s->location, s->options, out);
}

size_t cg_source_count(const cg_source *s) { return s->ops->count(s->state); }

int cg_source_get(cg_source *s, size_t index, cg_record *out) {
  memset(out, 0, sizeof *out);
  size_t n = s->ops->count(s->state);
  if (index >= n)
    return cg_error(CG_ERR_INVALID, "%s '%s': record %zu asked for, it holds %zu", s->ops->name, s->location, index, n);
  return s->ops->get(s->state, index, out);
}

const char *cg_source_location(const cg_source *s) { return s->location; }
const char *cg_source_type(const cg_source *s) { return s->ops->name; }

void cg_source_close(cg_source *s) {
  if (!s) return;
  s->ops->close(s->state);
  free(s->location);
  free(s);
}
