/* Scratch buffers kept in a layer's private state: grown in reshape, never
 * shrunk, so forward and backward never allocate. Internal to src/layers. */
#ifndef CG_LAYERS_SCRATCH_H
#define CG_LAYERS_SCRATCH_H

#include <stdlib.h>

#include "caffegrid/error.h"

/* Makes *buf hold at least n floats (contents are not kept when it grows). */
static inline int cg_scratch_floats(float **buf, size_t *capacity, size_t n) {
  if (*buf && n <= *capacity) return CG_OK;
  float *p = malloc((n ? n : 1) * sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "cannot allocate %zu floats of scratch", n);
  free(*buf);
  *buf = p;
  *capacity = n;
  return CG_OK;
}

/* The same for ints. */
static inline int cg_scratch_ints(int **buf, size_t *capacity, size_t n) {
  if (*buf && n <= *capacity) return CG_OK;
  int *p = malloc((n ? n : 1) * sizeof *p);
  if (!p) return cg_error(CG_ERR_NOMEM, "cannot allocate %zu ints of scratch", n);
  free(*buf);
  *buf = p;
  *capacity = n;
  return CG_OK;
}

#endif
