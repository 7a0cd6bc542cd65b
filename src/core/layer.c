/* Generic layer life cycle around the ops table: count checks, setup, and the
 * stand-alone instantiation used by tests. */
#include "core/layer.h"

#include <stdlib.h>
#include <string.h>

#include "math/backend.h"
#include "proto/upgrade.h"

static int check_count(const cg_layer *l, const char *what, int n, int min, int max) {
  if ((min >= 0 && n < min) || (max >= 0 && n > max)) {
    if (min == max) return cg_error(CG_ERR_INVALID, "needs %d %s, got %d", min, what, n);
    if (max < 0) return cg_error(CG_ERR_INVALID, "needs at least %d %s, got %d", min, what, n);
    return cg_error(CG_ERR_INVALID, "needs %d to %d %s, got %d", min, max, what, n);
  }
  (void)l;
  return CG_OK;
}

int cg_layer_init(cg_layer *l, const Caffe__LayerParameter *param, cg_phase phase, cg_blob *const *bottom,
                  int num_bottoms, cg_blob *const *top, int num_tops) {
  cg_net *net = l->net; /* the fields a caller sets before init */
  cg_rng rng = l->rng;
  const cg_backend *backend = l->backend ? l->backend : cg_backend_default();
  memset(l, 0, sizeof *l);
  l->net = net;
  l->rng = rng;
  l->backend = backend;
  l->param = param;
  l->name = param->name ? param->name : "";
  l->phase = phase;
  l->num_bottoms = num_bottoms;
  l->num_tops = num_tops;
  l->ops = cg_layer_find(param->type);
  if (!l->ops) {
    if (!param->type) return cg_error(CG_ERR_INVALID, "layer '%s' has no type", l->name);
    const char *problem = strcmp(param->type, "CoSData") == 0 ? cg_cos_data_form_problem(param) : NULL;
    if (problem) /* the forms upgrade_cos_data.c cannot read as MemoryData */
      return cg_error(CG_ERR_UNSUPPORTED,
                      "CoSData layer '%s': %s (caffegrid reads the CoSData form of CaffeOnSpark's image nets: an "
                      "image top (RAW_IMAGE, ENCODED_IMAGE or a FLOAT_ARRAY with channels, height and width), then an "
                      "INT or FLOAT label top, and a batch_size)",
                      l->name, problem);
    return cg_error(CG_ERR_UNSUPPORTED, "layer '%s': unknown layer type '%s'", l->name, param->type);
  }
  int rc = check_count(l, "bottom blob(s)", num_bottoms, l->ops->min_bottoms, l->ops->max_bottoms);
  if (!rc) rc = check_count(l, "top blob(s)", num_tops, l->ops->min_tops, l->ops->max_tops);
  if (!rc) rc = l->ops->setup(l, bottom, top);
  if (rc) return cg_error_wrap(rc, "layer '%s' (%s): ", l->name, l->ops->type);
  return CG_OK;
}

int cg_layer_instantiate(cg_layer *l, const Caffe__LayerParameter *param, cg_phase phase, cg_blob *const *bottom,
                         int num_bottoms, cg_blob *const *top, int num_tops, uint64_t seed) {
  l->net = NULL;
  cg_rng_seed(&l->rng, seed);
  int rc = cg_layer_init(l, param, phase, bottom, num_bottoms, top, num_tops);
  if (rc) return rc;
  for (int i = 0; i < l->num_params; i++) {
    cg_blob *p = l->params[i];
    p->data = calloc(p->count ? p->count : 1, sizeof(float));
    p->diff = calloc(p->count ? p->count : 1, sizeof(float));
    if (!p->data || !p->diff) return cg_error(CG_ERR_NOMEM, "layer '%s': out of memory", l->name);
    p->owned = true;
    p->capacity = p->count;
    rc = cg_filler_fill(&l->fillers[i], p, &l->rng);
    if (rc) return cg_error_wrap(rc, "layer '%s' (%s): ", l->name, l->ops->type);
  }
  rc = l->ops->reshape(l, bottom, top);
  if (rc) return cg_error_wrap(rc, "layer '%s' (%s): ", l->name, l->ops->type);
  return CG_OK;
}

void cg_layer_destroy(cg_layer *l) {
  if (!l) return;
  if (l->ops && l->ops->destroy) l->ops->destroy(l);
  for (int i = 0; i < l->num_params; i++) cg_blob_free(l->params[i]);
  l->num_params = 0;
  l->priv = NULL;
}
