/* Bookkeeping allocations that end the process when memory runs out (see xalloc.h). */
#include "core/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t bytes, const char *file, int line) {
  fprintf(stderr, "caffegrid: out of memory (%zu bytes of bookkeeping at %s:%d)\n", bytes, file, line);
  abort();
}

void *cg_xcalloc_at(size_t n, size_t size, const char *file, int line) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) out_of_memory(n * size, file, line);
  return p;
}

char *cg_xstrdup_at(const char *s, const char *file, int line) {
  char *p = strdup(s);
  if (!p) out_of_memory(strlen(s) + 1, file, line);
  return p;
}

char *cg_xprintf_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) out_of_memory(strlen(fmt), file, line);
  va_end(ap);
  return s;
}
