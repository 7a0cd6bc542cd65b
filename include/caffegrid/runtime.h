/* How caffegrid computes. A net's math runs on a backend (a table of gemm and
 * convolution kernels) chosen through cg_net_options.backend; fields left at
 * their defaults take the process-wide choices below, which the host program
 * makes once (the CLI and the Python module make them from CAFFEGRID_CONV,
 * CAFFEGRID_GEMM and CAFFEGRID_DENORMALS through caffegrid/environment.h; the
 * library reads no environment variable). Set them before nets are built and
 * run: computing threads read them without a lock. The defaults are the fast paths. */
#ifndef CAFFEGRID_RUNTIME_H
#define CAFFEGRID_RUNTIME_H

#include <stdbool.h>

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

/* Convolution kernels: the backend's fast ones (on the CPU, oneDNN's and the direct
 * single-channel kernels) where they take the shape, or im2col + gemm everywhere
 * (the reference, as Caffe computes). */
typedef enum cg_conv_kernels { CG_CONV_DEFAULT = 0, CG_CONV_FAST, CG_CONV_GEMM } cg_conv_kernels;
/* Matrix products on the CPU backend: oneDNN's sgemm or OpenBLAS's. */
typedef enum cg_gemm_kernels { CG_GEMM_DEFAULT = 0, CG_GEMM_ONEDNN, CG_GEMM_OPENBLAS } cg_gemm_kernels;

/* A net's backend; a zeroed struct is the process-wide default. */
typedef struct cg_backend_options {
  const char *name;     /* one of cg_backend_names() ("cpu"); NULL = "cpu" */
  cg_conv_kernels conv; /* DEFAULT = as cg_runtime_use_fast_conv chose */
  cg_gemm_kernels gemm; /* DEFAULT = as cg_runtime_use_openblas_gemm chose */
} cg_backend_options;

/* The backends this library was built with, NULL-terminated. */
const char *const *cg_backend_names(void);

/* The process-wide defaults of cg_backend_options: convolutions through the fast
 * kernels (true, the default) or im2col + gemm (false), for nets built afterwards. */
void cg_runtime_use_fast_conv(bool on);
/* Every gemm through OpenBLAS's sgemm (true) instead of oneDNN's (false, the
 * default), for nets built afterwards. */
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
