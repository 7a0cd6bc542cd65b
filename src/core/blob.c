/* Blob shape bookkeeping and owned memory growth. */
#include "caffegrid/blob.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"

cg_blob *cg_blob_create(const char *name) {
  cg_blob *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->owned = true;
  if (name && !(b->name = strdup(name))) {
    free(b);
    return NULL;
  }
  return b;
}

void cg_blob_free(cg_blob *b) {
  if (!b) return;
  if (b->owned) {
    free(b->data);
    free(b->diff);
  }
  free(b->name);
  free(b);
}

int cg_blob_reshape(cg_blob *b, int num_axes, const int *shape) {
  if (num_axes < 0 || num_axes > CG_BLOB_MAX_AXES)
    return cg_error(CG_ERR_SHAPE, "blob '%s': %d axes (at most %d)", b->name ? b->name : "", num_axes,
                    CG_BLOB_MAX_AXES);
  size_t count = 1;
  for (int i = 0; i < num_axes; i++) {
    if (shape[i] < 0)
      return cg_error(CG_ERR_SHAPE, "blob '%s': negative dimension %d on axis %d", b->name ? b->name : "",
                      shape[i], i);
    if (shape[i] && count > (SIZE_MAX / sizeof(float)) / (size_t)shape[i])
      return cg_error(CG_ERR_SHAPE, "blob '%s': element count overflows", b->name ? b->name : "");
    count *= (size_t)shape[i];
  }
  if (count > ((size_t)1 << 36))
    return cg_error(CG_ERR_SHAPE, "blob '%s': %zu elements is more than caffegrid allows (2^36)",
                    b->name ? b->name : "", count);
  if (count > b->capacity) {
    if (!b->owned)
      return cg_error(CG_ERR_SHAPE, "blob '%s': cannot grow a view from %zu to %zu elements",
                      b->name ? b->name : "", b->capacity, count);
    float *data = realloc(b->data, count * sizeof(float));
    if (data) b->data = data;
    float *diff = data ? realloc(b->diff, count * sizeof(float)) : NULL;
    if (diff) b->diff = diff;
    if (!data || !diff) return cg_error(CG_ERR_NOMEM, "blob '%s': cannot allocate %zu floats", b->name, count);
    memset(b->data + b->capacity, 0, (count - b->capacity) * sizeof(float));
    memset(b->diff + b->capacity, 0, (count - b->capacity) * sizeof(float));
    b->capacity = count;
  }
  b->num_axes = num_axes;
  for (int i = 0; i < num_axes; i++) b->shape[i] = shape[i];
  b->count = count;
  return CG_OK;
}

int cg_blob_reshape_like(cg_blob *b, const cg_blob *other) { return cg_blob_reshape(b, other->num_axes, other->shape); }

int cg_blob_reshape4(cg_blob *b, int n, int c, int h, int w) {
  int shape[4] = {n, c, h, w};
  return cg_blob_reshape(b, 4, shape);
}

int cg_blob_canonical_axis(const cg_blob *b, int axis) {
  if (axis < -b->num_axes || axis >= b->num_axes) return -1;
  return axis < 0 ? axis + b->num_axes : axis;
}

size_t cg_blob_count_range(const cg_blob *b, int start_axis, int end_axis) {
  size_t count = 1;
  for (int i = start_axis; i < end_axis; i++) count *= (size_t)b->shape[i];
  return count;
}

size_t cg_blob_count_from(const cg_blob *b, int start_axis) { return cg_blob_count_range(b, start_axis, b->num_axes); }

int cg_blob_legacy_dim(const cg_blob *b, int index) {
  if (index >= b->num_axes || index < -b->num_axes) return 1;
  return b->shape[index < 0 ? index + b->num_axes : index];
}

bool cg_blob_same_shape(const cg_blob *a, const cg_blob *b) {
  if (a->num_axes != b->num_axes) return false;
  for (int i = 0; i < a->num_axes; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

const char *cg_blob_shape_string(const cg_blob *b, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < b->num_axes && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%d ", b->shape[i]);
  if (used < size) snprintf(buf + used, size - used, "(%zu)", b->count);
  return buf;
}
