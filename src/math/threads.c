/* The math's thread count (see threads.h). */
#include "math/threads.h"

#include <cblas.h>
#include <omp.h>

int cg_math_threads(void) {
  int n = openblas_get_num_threads();
  return n > 0 ? n : 1;
}

int cg_math_threads_enter(int n) {
  int saved = omp_get_max_threads();
  if (saved != n) omp_set_num_threads(n);
  return saved;
}

void cg_math_threads_leave(int saved) {
  if (omp_get_max_threads() != saved) omp_set_num_threads(saved);
}
