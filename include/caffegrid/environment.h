/* The documented CAFFEGRID_* environment variables, turned into the library's
 * options and calls. The library itself reads no environment variable: the CLI and
 * the Python module include this header and call these functions, so a user's
 * variables mean the same through either door, and a program embedding the library
 * decides for itself whether to honour them. Header-only (static inline).
 *
 *   CAFFEGRID_CONV=gemm             convolutions through im2col + gemm
 *   CAFFEGRID_GEMM=openblas         gemms through OpenBLAS
 *   CAFFEGRID_DENORMALS=keep        IEEE gradual underflow kept
 *   CAFFEGRID_DATA_THREADS=N        prefetch threads per data layer, 0 to 64 (0: read in forward)
 *   CAFFEGRID_SKIP_BAD_RECORDS=1    unreadable records are logged, counted and replaced
 *   CAFFEGRID_MAX_BAD_FRACTION=F    ...unless more than F of them are bad (default 0.1; 1: no limit)
 *   CAFFEGRID_PEERS, CAFFEGRID_RANK  a TCP ring (see cg_env_comm_options)
 *   CAFFEGRID_PEER_TIMEOUT=S        seconds a collective may wait for a silent rank (MPI and TCP; 300)
 *   CAFFEGRID_FAULT_BEFORE_RENAME   for tests only; the CLI reads it itself */
#ifndef CAFFEGRID_ENVIRONMENT_H
#define CAFFEGRID_ENVIRONMENT_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/comm.h"
#include "caffegrid/error.h"
#include "caffegrid/runtime.h"

/* A flag variable is on unless unset, empty, "0" or "false". */
static inline bool cg_env_flag(const char *name) {
  const char *v = getenv(name);
  return v && v[0] && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
}

static inline bool cg_env_equals(const char *name, const char *value) {
  const char *v = getenv(name);
  return v && strcmp(v, value) == 0;
}

/* CAFFEGRID_CONV, CAFFEGRID_GEMM and CAFFEGRID_DENORMALS into cg_runtime_*. Call once,
 * before any net is built. */
static inline void cg_env_configure_runtime(void) {
  cg_runtime_use_fast_conv(!cg_env_equals("CAFFEGRID_CONV", "gemm"));
  cg_runtime_use_openblas_gemm(cg_env_equals("CAFFEGRID_GEMM", "openblas"));
  cg_runtime_flush_denormals(!cg_env_equals("CAFFEGRID_DENORMALS", "keep"));
}

/* CAFFEGRID_DATA_THREADS, CAFFEGRID_SKIP_BAD_RECORDS and CAFFEGRID_MAX_BAD_FRACTION
 * as the data_threads, skip_bad_records and max_bad_fraction of cg_net_options /
 * cg_solver_options. A bad value is an error naming the variable. */
static inline int cg_env_data_options(int *data_threads, bool *skip_bad_records, double *max_bad_fraction) {
  *data_threads = 0;
  *skip_bad_records = cg_env_flag("CAFFEGRID_SKIP_BAD_RECORDS");
  *max_bad_fraction = 0;
  const char *f = getenv("CAFFEGRID_MAX_BAD_FRACTION");
  if (f && f[0]) {
    char *end;
    double x = strtod(f, &end);
    if (*end || !(x > 0 && x <= 1))
      return cg_error(CG_ERR_INVALID, "CAFFEGRID_MAX_BAD_FRACTION='%s': expected a fraction above 0, at most 1", f);
    *max_bad_fraction = x;
  }
  const char *v = getenv("CAFFEGRID_DATA_THREADS");
  if (v && v[0]) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 0 || n > 64)
      return cg_error(CG_ERR_INVALID, "CAFFEGRID_DATA_THREADS='%s': expected a number from 0 to 64", v);
    *data_threads = n == 0 ? -1 : (int)n;
  }
  return CG_OK;
}

/* Started by mpirun or srun (the variables those launchers set)? */
static inline bool cg_env_mpi_launched(void) {
  const char *tasks = getenv("SLURM_NTASKS");
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") ||
         (getenv("SLURM_STEP_ID") && tasks && atoi(tasks) > 1);
}

/* The communicator options for this process: MPI when mpirun or srun started it; a
 * TCP ring when CAFFEGRID_PEERS lists host:port of every rank and CAFFEGRID_RANK says
 * which one this is; else a local one of size 1. CAFFEGRID_PEER_TIMEOUT (seconds)
 * sets the peer timeout of both MPI and TCP. argc/argv may be NULL. */
static inline int cg_env_comm_options(int *argc, char ***argv, cg_comm_options *o) {
  *o = (cg_comm_options){.backend = "local", .argc = argc, .argv = argv};
  const char *peers = getenv("CAFFEGRID_PEERS"), *timeout = getenv("CAFFEGRID_PEER_TIMEOUT");
  if (timeout && timeout[0]) {
    char *end;
    double t = strtod(timeout, &end);
    if (*end || t <= 0) return cg_error(CG_ERR_INVALID, "CAFFEGRID_PEER_TIMEOUT='%s': expected seconds (> 0)", timeout);
    o->timeout_s = t;
  }
  if (cg_env_mpi_launched()) {
    o->backend = "mpi";
  } else if (peers && peers[0]) {
    const char *rank = getenv("CAFFEGRID_RANK");
    if (!rank || !rank[0]) return cg_error(CG_ERR_INVALID, "CAFFEGRID_PEERS is set but CAFFEGRID_RANK is not");
    char *end;
    long r = strtol(rank, &end, 10);
    if (*end || r < 0 || r > 1 << 20) return cg_error(CG_ERR_INVALID, "CAFFEGRID_RANK='%s': expected a rank number", rank);
    o->backend = "tcp", o->peers = peers, o->rank = (int)r;
  }
  return CG_OK;
}

/* The communicator cg_env_comm_options describes. */
static inline int cg_env_comm_create(int *argc, char ***argv, cg_comm **out) {
  *out = NULL;
  cg_comm_options o;
  int rc = cg_env_comm_options(argc, argv, &o);
  return rc ? rc : cg_comm_create(&o, out);
}

#endif
