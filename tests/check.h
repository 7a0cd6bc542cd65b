/* Minimal test checks: every failed check prints file:line and is counted; a
 * test that cannot run here (a data file absent) is skipped with CHECK_SKIP, said
 * and counted. A test program ends with `return CHECK_REPORT();`, which prints
 * "N passed, M failed, K skipped" and returns non-zero when anything failed. */
#ifndef CG_TEST_CHECK_H
#define CG_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed_count, check_failed_count, check_skipped_count;

/* CHECK_SKIP(why...): one test of the calling function skipped, with the reason on stdout */
#define CHECK_SKIP(...)                                  \
  do {                                                   \
    check_skipped_count++;                               \
    printf("SKIP %s: ", __func__);                       \
    printf(__VA_ARGS__);                                 \
    printf("\n");                                        \
  } while (0)

#define CHECK_RECORD(ok, ...)                                  \
  do {                                                         \
    if (ok) {                                                  \
      check_passed_count++;                                    \
    } else {                                                   \
      check_failed_count++;                                    \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);     \
      fprintf(stderr, __VA_ARGS__);                            \
      fprintf(stderr, "\n");                                   \
    }                                                          \
  } while (0)

#define CHECK(cond) CHECK_RECORD((cond), "%s", #cond)
#define CHECK_MSG(cond, ...) CHECK_RECORD((cond), __VA_ARGS__)
#define CHECK_EQ_INT(a, b)                                                                             \
  do {                                                                                                 \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                    \
    CHECK_RECORD(check_a_ == check_b_, "%s == %s (%lld vs %lld)", #a, #b, check_a_, check_b_);         \
  } while (0)
#define CHECK_NEAR(a, b, tol)                                                                          \
  do {                                                                                                 \
    double check_a_ = (double)(a), check_b_ = (double)(b);                                             \
    CHECK_RECORD(fabs(check_a_ - check_b_) <= (tol), "%s ~ %s (%.9g vs %.9g, tol %g)", #a, #b, check_a_, \
                 check_b_, (double)(tol));                                                             \
  } while (0)
#define CHECK_STR_CONTAINS(hay, needle)                                                                \
  do {                                                                                                 \
    const char *check_h_ = (hay), *check_n_ = (needle);                                                \
    CHECK_RECORD(check_h_ && strstr(check_h_, check_n_), "'%s' should contain '%s'",                   \
                 check_h_ ? check_h_ : "(null)", check_n_);                                            \
  } while (0)
#define CHECK_REPORT()                                                                                  \
  (printf("%d passed, %d failed, %d skipped\n", check_passed_count, check_failed_count, check_skipped_count), \
   check_failed_count ? 1 : 0)

#endif
