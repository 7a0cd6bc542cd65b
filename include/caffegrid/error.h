/* caffegrid error reporting: functions return 0 or a negative cg_status code;
 * the words for people live in a per-thread message, read with cg_error_message().
 * Library code never prints or exits on a user's bad input; the CLI decides. */
#ifndef CAFFEGRID_ERROR_H
#define CAFFEGRID_ERROR_H

#include <stdio.h>

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

/* One list defines the codes and their names. */
#define CG_STATUS_LIST(X)                                  \
  X(CG_OK, 0, "ok")                                        \
  X(CG_ERR_IO, -1, "i/o error")                            \
  X(CG_ERR_PARSE, -2, "parse error")                       \
  X(CG_ERR_INVALID, -3, "invalid argument")                \
  X(CG_ERR_SHAPE, -4, "shape mismatch")                    \
  X(CG_ERR_NOMEM, -5, "out of memory")                     \
  X(CG_ERR_UNSUPPORTED, -6, "unsupported")                 \
  X(CG_ERR_NOT_FOUND, -7, "not found")                     \
  X(CG_ERR_CORRUPT, -8, "corrupt data")                    \
  X(CG_ERR_COMM, -9, "communication error")              \
  X(CG_ERR_NONFINITE, -10, "non-finite values")

typedef enum {
#define CG_STATUS_ENUM(name, value, text) name = value,
  CG_STATUS_LIST(CG_STATUS_ENUM)
#undef CG_STATUS_ENUM
} cg_status;

/* Records a message for this thread and returns `code` (so: return cg_error(...)). */
int cg_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends context ("file.prototxt: layer 'conv1': ") to this thread's message; returns `code`. */
int cg_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread; borrowed, valid until the next cg_error call. */
const char *cg_error_message(void);

/* The fixed name of a status code ("parse error"). */
const char *cg_status_name(int code);

/* Aborts with file:line on a bug in caffegrid itself (never for a user's bad input). */
#define CG_ASSERT(cond)                                                              \
  do {                                                                               \
    if (!(cond)) cg_assert_fail(__FILE__, __LINE__, #cond);                          \
  } while (0)
void cg_assert_fail(const char *file, int line, const char *what) __attribute__((noreturn));

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
