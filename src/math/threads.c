/* The math's thread count (see threads.h). Builds without OpenMP (the libFuzzer
 * targets) leave the thread count alone. */
#include "math/threads.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "math/fpmode.h"

int cg_math_threads(void) {
  int n = openblas_get_num_threads();
  return n > 0 ? n : 1;
}

void cg_math_threads_set(int n) { openblas_set_num_threads(n > 0 ? n : 1); }

#ifdef _OPENMP
int cg_math_threads_enter(int n) {
  int saved = omp_get_max_threads();
  if (saved != n) omp_set_num_threads(n);
  cg_fp_workers(n); /* the pool's threads flush denormals as the caller does */
  return saved;
}

void cg_math_threads_leave(int saved) {
  if (omp_get_max_threads() != saved) omp_set_num_threads(saved);
}
#else
int cg_math_threads_enter(int n) { return n; }
void cg_math_threads_leave(int saved) { (void)saved; }
#endif
