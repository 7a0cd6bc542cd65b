/* One thread pool for the math: oneDNN's convolutions and gemms run on OpenMP
 * threads, as many as OpenBLAS is told to use (OPENBLAS_NUM_THREADS, or what
 * `caffegrid train` gives each rank). Two pools spinning on two cores slowed
 * CaffeNet by half; so OpenBLAS's own threads stay idle. */
#ifndef CG_MATH_THREADS_H
#define CG_MATH_THREADS_H

#include "caffegrid/runtime.h"

/* Sets the OpenMP thread count to n for the calling thread and returns the
 * previous one, for cg_math_threads_leave. */
int cg_math_threads_enter(int n);
void cg_math_threads_leave(int saved);

#endif
