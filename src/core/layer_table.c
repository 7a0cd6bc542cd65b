/* The layer table built from CG_LAYER_LIST, and the add-param helper. */
#include <string.h>

#include "core/layer.h"
#include "core/layer_list.h"

#define CG_DECLARE_LAYER(sym) extern const cg_layer_ops sym;
CG_LAYER_LIST(CG_DECLARE_LAYER)
#undef CG_DECLARE_LAYER

const cg_layer_ops *const cg_layer_table[] = {
#define CG_REFERENCE_LAYER(sym) &sym,
    CG_LAYER_LIST(CG_REFERENCE_LAYER)
#undef CG_REFERENCE_LAYER
};
const int cg_layer_table_size = (int)(sizeof cg_layer_table / sizeof cg_layer_table[0]);

const cg_layer_ops *cg_layer_find(const char *type) {
  if (!type) return NULL;
  for (int i = 0; i < cg_layer_table_size; i++)
    if (strcmp(cg_layer_table[i]->type, type) == 0) return cg_layer_table[i];
  return NULL;
}

cg_blob *cg_layer_add_param(cg_layer *l, int num_axes, const int *shape, cg_filler filler) {
  if (l->num_params >= CG_LAYER_MAX_PARAMS) {
    cg_error(CG_ERR_INVALID, "too many learnable blobs");
    return NULL;
  }
  cg_blob *b = cg_blob_create(NULL);
  if (!b) {
    cg_error(CG_ERR_NOMEM, "out of memory");
    return NULL;
  }
  b->owned = false; /* storage comes from the net's flat array */
  int shape_copy[CG_BLOB_MAX_AXES];
  for (int i = 0; i < num_axes && i < CG_BLOB_MAX_AXES; i++) shape_copy[i] = shape[i];
  if (num_axes > CG_BLOB_MAX_AXES || num_axes < 0) {
    cg_blob_free(b);
    cg_error(CG_ERR_SHAPE, "bad parameter shape");
    return NULL;
  }
  size_t count = 1;
  bool too_large = false;
  for (int i = 0; i < num_axes; i++) {
    if (shape[i] < 0) {
      cg_blob_free(b);
      cg_error(CG_ERR_SHAPE, "parameter %d: negative dimension %d on axis %d", l->num_params, shape[i], i);
      return NULL;
    }
    if (shape[i] && count > ((size_t)1 << 36) / (size_t)shape[i]) too_large = true;
    else count *= (size_t)shape[i];
  }
  if (too_large) { /* the whole shape, not the axis where the product overflowed */
    char dims[256] = "";
    for (int i = 0, used = 0; i < num_axes && used < (int)sizeof dims; i++)
      used += snprintf(dims + used, sizeof dims - (size_t)used, "%s%d", i ? " x " : "", shape[i]);
    cg_blob_free(b);
    cg_error(CG_ERR_SHAPE, "parameter %d would be %s values, more than the 2^36 a parameter may hold", l->num_params, dims);
    return NULL;
  }
  b->num_axes = num_axes;
  memcpy(b->shape, shape_copy, sizeof(int) * (size_t)num_axes);
  b->count = count;
  l->fillers[l->num_params] = filler;
  l->params[l->num_params++] = b;
  return b;
}
