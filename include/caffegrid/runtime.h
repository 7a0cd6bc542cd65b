/* Process-wide choices of how caffegrid computes, made once by the host program
 * (the CLI and the Python module make them from CAFFEGRID_CONV, CAFFEGRID_GEMM and
 * CAFFEGRID_DENORMALS through caffegrid/environment.h; the library reads no
 * environment variable). Set them before nets are built and run: computing threads
 * read them without a lock. The defaults are the fast paths. */
#ifndef CAFFEGRID_RUNTIME_H
#define CAFFEGRID_RUNTIME_H

#include <stdbool.h>

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

/* Convolutions through oneDNN and the direct single-channel kernels (true, the
 * default) or through the im2col + gemm reference kernels (false). Applies to
 * Convolution layers built afterwards. */
void cg_runtime_use_fast_conv(bool on);
/* Every gemm through OpenBLAS's sgemm (true) instead of oneDNN's (false, the default). */
void cg_runtime_use_openblas_gemm(bool on);
/* Denormal floats flushed to zero while a net computes (true, the default: the
 * CPU's FTZ/DAZ, the caller's own mode restored after each call), or IEEE's gradual
 * underflow kept, as Caffe computes (false). */
void cg_runtime_flush_denormals(bool on);

/* The thread count the math runs with (>= 1): OpenBLAS's, whose own threads stay
 * idle while oneDNN and caffegrid's loops run on that many OpenMP threads. */
int cg_math_threads(void);
/* Sets it (n >= 1), as `caffegrid train` does for each rank's share of the cores
 * and Spark tasks for theirs; layers set up afterwards build their kernels for it. */
void cg_math_threads_set(int n);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
