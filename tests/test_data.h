/* Where the tests' data files are: $SHARED_DATA, which tests/run_all.sh points at
 * ../shared/data beside the checkout or, on a clone without it, at the files that ship
 * in tests/fixtures. A test whose file is not there is skipped (said and counted),
 * never failed and never run on a missing file. */
#ifndef CG_TEST_DATA_H
#define CG_TEST_DATA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

static inline const char *test_data_dir(void) {
  const char *dir = getenv("SHARED_DATA");
  return dir && dir[0] ? dir : "../shared/data";
}

/* true when every file or folder named (relative to test_data_dir(), list ends with
 * NULL) exists; otherwise the calling test `test` is counted as skipped, naming the
 * first one missing */
static inline bool test_data_present(const char *test, ...) {
  va_list ap;
  va_start(ap, test);
  const char *rel;
  bool present = true;
  while (present && (rel = va_arg(ap, const char *))) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_data_dir(), rel);
    if (access(path, R_OK) != 0) {
      present = false;
      check_skipped_count++;
      printf("SKIP %s: needs %s, which is not here (../shared/data is beside this project's CI only)\n", test,
             path);
    }
  }
  va_end(ap);
  return present;
}

/* NEED_DATA("caffe_ref/x", "images/y"): return from the calling (void) test unless all are present */
#define NEED_DATA(...)                                                      \
  do {                                                                      \
    if (!test_data_present(__func__, __VA_ARGS__, (const char *)NULL)) return; \
  } while (0)

#endif
