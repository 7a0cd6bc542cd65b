/* Per-thread error messages and the assert used for caffegrid's own bugs. */
#include "caffegrid/error.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { MESSAGE_CAPACITY = 4096 };
static _Thread_local char message[MESSAGE_CAPACITY];

int cg_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  return code;
}

int cg_error_wrap(int code, const char *fmt, ...) {
  char prefix[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  size_t plen = strlen(prefix), mlen = strlen(message);
  if (plen + mlen + 1 > sizeof message) mlen = sizeof message - plen - 1;
  memmove(message + plen, message, mlen);
  memcpy(message, prefix, plen);
  message[plen + mlen] = '\0';
  return code;
}

const char *cg_error_message(void) { return message; }

const char *cg_status_name(int code) {
  switch (code) {
#define CG_STATUS_CASE(name, value, text) \
  case value:                             \
    return text;
    CG_STATUS_LIST(CG_STATUS_CASE)
#undef CG_STATUS_CASE
  }
  return "unknown error";
}

void cg_assert_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "caffegrid internal error at %s:%d: assertion failed: %s\n", file, line, what);
  abort();
}
