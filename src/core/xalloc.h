/* Allocation for small bookkeeping (names, index tables sized by a net's layers and
 * blobs): running out of memory there ends the process with a message naming the
 * place, rather than an error path per allocation that no test could reach.
 * Allocations sized by the data (blobs, parameter arrays, records) are checked by
 * their callers and answer CG_ERR_NOMEM instead. */
#ifndef CG_CORE_XALLOC_H
#define CG_CORE_XALLOC_H

#include <stddef.h>

void *cg_xcalloc_at(size_t n, size_t size, const char *file, int line);
char *cg_xstrdup_at(const char *s, const char *file, int line);
char *cg_xprintf_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define cg_xcalloc(n, size) cg_xcalloc_at((n), (size), __FILE__, __LINE__)
#define cg_xstrdup(s) cg_xstrdup_at((s), __FILE__, __LINE__)
#define cg_xprintf(...) cg_xprintf_at(__FILE__, __LINE__, __VA_ARGS__)

#endif
