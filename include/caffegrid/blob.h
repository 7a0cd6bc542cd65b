/* caffegrid blobs: an N-d float array with its gradient ("diff"), Caffe's unit of data.
 * A blob either owns its memory or is a view into memory owned elsewhere
 * (learnable parameters live in one flat array per net). */
#ifndef CAFFEGRID_BLOB_H
#define CAFFEGRID_BLOB_H

#include <stdbool.h>
#include <stddef.h>

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

enum { CG_BLOB_MAX_AXES = 32 };

typedef struct cg_blob {
  char *name;                    /* owned; may be NULL */
  int num_axes;
  int shape[CG_BLOB_MAX_AXES];
  size_t count;                  /* product of shape; 1 for a scalar (0 axes) */
  float *data;
  float *diff;
  size_t capacity;               /* elements allocated in data and diff when owned */
  bool owned;                    /* false: data/diff point into memory owned by someone else */
} cg_blob;

/* A new empty owned blob (count 0). `name` is copied; NULL allowed. */
cg_blob *cg_blob_create(const char *name);
void cg_blob_free(cg_blob *b); /* NULL is a no-op; frees data/diff only when owned */

/* Sets the shape; an owned blob grows its memory (never shrinks, contents kept up to count).
 * Errors on negative dims, too many axes, or a count that overflows. */
int cg_blob_reshape(cg_blob *b, int num_axes, const int *shape);
int cg_blob_reshape_like(cg_blob *b, const cg_blob *other);
/* Shorthand for 4-d shapes (num, channels, height, width). */
int cg_blob_reshape4(cg_blob *b, int n, int c, int h, int w);

/* Axis helpers with Caffe's conventions: negative axes count from the end. */
int cg_blob_canonical_axis(const cg_blob *b, int axis); /* -1 when out of range */
size_t cg_blob_count_range(const cg_blob *b, int start_axis, int end_axis); /* product of shape[start, end) */
size_t cg_blob_count_from(const cg_blob *b, int start_axis);
/* Caffe's LegacyShape: num/channels/height/width, 1 for missing trailing axes. */
int cg_blob_legacy_dim(const cg_blob *b, int index);
bool cg_blob_same_shape(const cg_blob *a, const cg_blob *b);
/* "64 1 28 28 (50176)" into buf, as Caffe logs shapes. */
const char *cg_blob_shape_string(const cg_blob *b, char *buf, size_t size);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
