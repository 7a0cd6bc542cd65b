/* HDF5Data: Caffe's layer reading rows of HDF5 datasets named after its tops from
 * the .h5 files a list file names (hdf5_data_param: source, batch_size, shuffle).
 * Files are read whole, one at a time, as Caffe does. Every file is opened at setup
 * for its shapes, so a missing file or mismatched dataset is reported up front.
 *
 * Shuffling follows Caffe (file order reshuffled every pass, row order reshuffled
 * every time a file is entered), but each permutation is drawn from a seed taken
 * once at setup and the (pass, file) it is for, so the read position alone
 * restores the stream on resume. With several ranks, rank r keeps rows r, r+W, ... */
#include <stdlib.h>
#include <string.h>

#include "core/layer.h"
#include "core/net_impl.h"
#include "data/hdf5_source.h"

typedef struct hdf5_state {
  char **files;
  int num_files;
  size_t *rows; /* per file */
  size_t total;
  int num_tops;
  const char **names;     /* borrowed from the layer's tops */
  cg_hdf5_array *shapes;  /* per top, from the first file (data NULL) */
  cg_hdf5_array *arrays;  /* per top, the loaded file */
  int loaded;             /* file in arrays; -1 none */
  int batch, rank, world;
  bool shuffle;
  uint64_t seed;
  /* cursor: `position` rows consumed (all ranks), at row `row` of slot `slot` of pass `pass` */
  uint64_t position, pass;
  int slot;
  size_t row;
  int *order;             /* file order of this pass */
  size_t *perm;           /* row order of the current (pass, slot); NULL without shuffle */
  size_t perm_cap;
  bool perm_ready;
} hdf5_state;

static void seed_for(cg_rng *r, uint64_t seed, uint64_t pass, uint64_t slot) {
  cg_rng_seed(r, seed ^ (pass + 1) * 0x9e3779b97f4a7c15ull ^ (slot + 1) * 0xc2b2ae3d27d4eb4full);
}

static void file_order(hdf5_state *s) {
  for (int i = 0; i < s->num_files; i++) s->order[i] = i;
  if (!s->shuffle) return;
  cg_rng r;
  seed_for(&r, s->seed, s->pass, 0);
  for (int i = s->num_files - 1; i > 0; i--) {
    int j = (int)cg_rng_below(&r, (uint64_t)i + 1);
    int t = s->order[i];
    s->order[i] = s->order[j], s->order[j] = t;
  }
}

/* Moves the cursor to `position`. */
static void locate(hdf5_state *s, uint64_t position) {
  s->position = position;
  s->pass = position / s->total;
  size_t rest = (size_t)(position % s->total);
  file_order(s);
  s->slot = 0;
  while (rest >= s->rows[s->order[s->slot]]) rest -= s->rows[s->order[s->slot++]];
  s->row = rest;
  s->perm_ready = false;
}

static void advance(hdf5_state *s) {
  s->position++;
  s->row++;
  while (s->row >= s->rows[s->order[s->slot]]) {
    s->row = 0;
    s->perm_ready = false;
    if (++s->slot == s->num_files) {
      s->slot = 0;
      s->pass++;
      file_order(s);
    }
  }
}

/* Makes sure the current slot's file is loaded and its row order drawn. */
static int ensure_loaded(hdf5_state *s) {
  int f = s->order[s->slot];
  if (s->loaded != f) {
    for (int i = 0; i < s->num_tops; i++) cg_hdf5_array_free(&s->arrays[i]);
    s->loaded = -1;
    int rc = cg_hdf5_read(s->files[f], s->names, s->num_tops, true, s->arrays);
    if (rc) return rc;
    for (int i = 0; i < s->num_tops; i++)
      if ((size_t)s->arrays[i].shape[0] != s->rows[f] || s->arrays[i].count != s->rows[f] * s->shapes[i].count) {
        for (int k = 0; k < s->num_tops; k++) cg_hdf5_array_free(&s->arrays[k]);
        return cg_error(CG_ERR_CORRUPT, "HDF5 file '%s' changed since the layer was set up", s->files[f]);
      }
    s->loaded = f;
  }
  if (s->shuffle && !s->perm_ready) {
    size_t n = s->rows[f];
    if (n > s->perm_cap) {
      size_t *p = realloc(s->perm, n * sizeof *p);
      if (!p) return cg_error(CG_ERR_NOMEM, "out of memory");
      s->perm = p;
      s->perm_cap = n;
    }
    for (size_t i = 0; i < n; i++) s->perm[i] = i;
    cg_rng r;
    seed_for(&r, s->seed, s->pass, (uint64_t)s->slot + 1);
    for (size_t i = n - 1; i > 0; i--) {
      size_t j = (size_t)cg_rng_below(&r, (uint64_t)i + 1);
      size_t t = s->perm[i];
      s->perm[i] = s->perm[j], s->perm[j] = t;
    }
  }
  s->perm_ready = true;
  return CG_OK;
}

static int hdf5_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__HDF5DataParameter *p = l->param->hdf5_data_param;
  if (!p || !p->source || !p->source[0]) return cg_error(CG_ERR_INVALID, "needs hdf5_data_param.source");
  if (!p->batch_size) return cg_error(CG_ERR_INVALID, "hdf5_data_param.batch_size must be positive");
  if (l->param->transform_param)
    return cg_error(CG_ERR_INVALID, "HDF5Data does not transform data: remove transform_param");
  hdf5_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = s;
  s->loaded = -1;
  s->num_tops = l->num_tops;
  s->batch = (int)p->batch_size;
  s->shuffle = p->shuffle;
  s->rank = l->net ? l->net->opt.rank : 0;
  s->world = l->net && l->net->opt.world_size > 0 ? l->net->opt.world_size : 1;
  s->seed = cg_rng_next(&l->rng);
  s->names = calloc((size_t)s->num_tops, sizeof *s->names);
  s->shapes = calloc((size_t)s->num_tops, sizeof *s->shapes);
  s->arrays = calloc((size_t)s->num_tops, sizeof *s->arrays);
  if (!s->names || !s->shapes || !s->arrays) return cg_error(CG_ERR_NOMEM, "out of memory");
  for (int i = 0; i < s->num_tops; i++) s->names[i] = l->param->top[i];
  int rc = cg_hdf5_read_list(p->source, &s->files, &s->num_files);
  if (rc) return rc;
  s->rows = calloc((size_t)s->num_files, sizeof *s->rows);
  s->order = calloc((size_t)s->num_files, sizeof *s->order);
  cg_hdf5_array *a = calloc((size_t)s->num_tops, sizeof *a);
  if (!s->rows || !s->order || !a) {
    free(a);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  for (int f = 0; f < s->num_files && !rc; f++) {
    rc = cg_hdf5_read(s->files[f], s->names, s->num_tops, false, a);
    for (int i = 0; i < s->num_tops && !rc; i++) {
      size_t per_row = 1;
      for (int k = 1; k < a[i].num_axes; k++) per_row *= (size_t)a[i].shape[k];
      if (f == 0) {
        s->shapes[i] = a[i];
        s->shapes[i].count = per_row;
        continue;
      }
      bool same = a[i].num_axes == s->shapes[i].num_axes;
      for (int k = 1; k < a[i].num_axes && same; k++) same = a[i].shape[k] == s->shapes[i].shape[k];
      if (!same)
        rc = cg_error(CG_ERR_SHAPE, "HDF5 file '%s': rows of dataset '%s' are shaped differently from those in '%s'",
                      s->files[f], s->names[i], s->files[0]);
    }
    if (!rc) {
      s->rows[f] = (size_t)a[0].shape[0];
      s->total += s->rows[f];
    }
  }
  free(a);
  if (rc) return rc;
  if (s->total == 0) return cg_error(CG_ERR_INVALID, "the files listed in '%s' hold no rows", p->source);
  locate(s, 0);
  return CG_OK;
}

static int hdf5_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  hdf5_state *s = l->priv;
  for (int i = 0; i < s->num_tops; i++) {
    int shape[CG_BLOB_MAX_AXES];
    memcpy(shape, s->shapes[i].shape, sizeof shape);
    shape[0] = s->batch;
    int rc = cg_blob_reshape(top[i], s->shapes[i].num_axes, shape);
    if (rc) return rc;
  }
  return CG_OK;
}

static int hdf5_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  hdf5_state *s = l->priv;
  for (int b = 0; b < s->batch; b++) {
    while (s->position % (uint64_t)s->world != (uint64_t)s->rank) advance(s);
    int rc = ensure_loaded(s);
    if (rc) return rc;
    size_t row = s->shuffle ? s->perm[s->row] : s->row;
    for (int i = 0; i < s->num_tops; i++) {
      size_t n = s->shapes[i].count;
      memcpy(top[i]->data + (size_t)b * n, s->arrays[i].data + row * n, n * sizeof(float));
    }
    advance(s);
  }
  return CG_OK;
}

static void hdf5_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top, (void)propagate_down, (void)bottom;
}

static uint64_t hdf5_get_position(const cg_layer *l) { return ((const hdf5_state *)l->priv)->position; }

static int hdf5_set_position(cg_layer *l, uint64_t position) {
  locate(l->priv, position);
  return CG_OK;
}

static void hdf5_destroy(cg_layer *l) {
  hdf5_state *s = l->priv;
  if (!s) return;
  cg_hdf5_free_list(s->files, s->num_files);
  for (int i = 0; s->arrays && i < s->num_tops; i++) cg_hdf5_array_free(&s->arrays[i]);
  free(s->arrays);
  free(s->shapes);
  free(s->names);
  free(s->rows);
  free(s->order);
  free(s->perm);
  free(s);
}

const cg_layer_ops cg_layer_hdf5_data = {
    .type = "HDF5Data", .min_bottoms = 0, .max_bottoms = 0, .min_tops = 1, .max_tops = -1,
    .setup = hdf5_setup, .reshape = hdf5_reshape, .forward = hdf5_forward, .backward = hdf5_backward,
    .destroy = hdf5_destroy, .get_position = hdf5_get_position, .set_position = hdf5_set_position,
};
