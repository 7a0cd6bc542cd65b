/* FTZ/DAZ for the math's threads (see fpmode.h). */
#include "math/fpmode.h"

#include "caffegrid/runtime.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xmmintrin.h>

enum { FTZ_DAZ = 0x8040, EXCEPTION_FLAGS = 0x3f }; /* MXCSR bits 15 (flush to zero) and 6 (denormals are zero) */

static bool flush_on = true; /* cg_runtime_flush_denormals; the host program sets it before nets compute */

static bool flush(void) { return flush_on; }

void cg_runtime_flush_denormals(bool on) { flush_on = on; }

unsigned cg_fp_enter(void) {
  unsigned saved = _mm_getcsr();
  if (flush() && (saved & FTZ_DAZ) != FTZ_DAZ) _mm_setcsr(saved | FTZ_DAZ);
  return saved;
}

void cg_fp_leave(unsigned saved) {
  /* the caller's modes back; the exception flags raised meanwhile (bits 0-5) stay */
  unsigned now = _mm_getcsr(), back = (now & EXCEPTION_FLAGS) | (saved & ~EXCEPTION_FLAGS);
  if (now != back) _mm_setcsr(back);
}

void cg_fp_workers(int n) {
  enum { MAX_TRACKED = 256 };
  static _Thread_local bool done[MAX_TRACKED];
  if (!flush() || n <= 1 || (n < MAX_TRACKED && done[n])) return;
#pragma omp parallel num_threads(n)
  _mm_setcsr(_mm_getcsr() | FTZ_DAZ);
  if (n < MAX_TRACKED) done[n] = true;
}
