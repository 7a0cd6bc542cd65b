/* Input and DummyData: sources whose tops are shaped by the prototxt, filled by
 * the caller (Input) or by fillers (DummyData). */
#include <stdlib.h>

#include "core/layer.h"

static int shape_from_proto(const Caffe__BlobShape *s, cg_blob *top) {
  int dims[CG_BLOB_MAX_AXES];
  if (s->n_dim > CG_BLOB_MAX_AXES) return cg_error(CG_ERR_SHAPE, "shape has %zu axes (at most %d)", s->n_dim, CG_BLOB_MAX_AXES);
  for (size_t i = 0; i < s->n_dim; i++) {
    if (s->dim[i] < 0 || s->dim[i] > INT32_MAX) return cg_error(CG_ERR_SHAPE, "shape dimension %lld is out of range", (long long)s->dim[i]);
    dims[i] = (int)s->dim[i];
  }
  return cg_blob_reshape(top, (int)s->n_dim, dims);
}

static int input_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  const Caffe__InputParameter *p = l->param->input_param;
  size_t n = p ? p->n_shape : 0;
  if (n != 1 && n != (size_t)l->num_tops)
    return cg_error(CG_ERR_INVALID, "input_param needs one shape, or one per top (%d tops, %zu shapes)", l->num_tops, n);
  for (int i = 0; i < l->num_tops; i++) {
    int rc = shape_from_proto(p->shape[n == 1 ? 0 : i], top[i]);
    if (rc) return rc;
  }
  return CG_OK;
}

/* The caller may have reshaped the input blobs; keep whatever shape they have. */
static int input_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)l, (void)bottom, (void)top;
  return CG_OK;
}

static int input_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)l, (void)bottom, (void)top;
  return CG_OK;
}

static void no_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top, (void)propagate_down, (void)bottom;
}

const cg_layer_ops cg_layer_input = {
    .type = "Input", .min_bottoms = 0, .max_bottoms = 0, .min_tops = 1, .max_tops = -1,
    .setup = input_setup, .reshape = input_reshape, .forward = input_forward, .backward = no_backward,
};

typedef struct dummy_state {
  cg_filler fillers[16];
  bool refill[16]; /* non-constant fillers are drawn again every forward, as Caffe does */
} dummy_state;

static int dummy_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  const Caffe__DummyDataParameter *p = l->param->dummy_data_param;
  if (!p) return cg_error(CG_ERR_INVALID, "needs dummy_data_param");
  if (l->num_tops > 16) return cg_error(CG_ERR_INVALID, "at most 16 tops");
  size_t nt = (size_t)l->num_tops;
  size_t nshape = p->n_shape ? p->n_shape : p->n_num;
  if (nshape != 1 && nshape != nt)
    return cg_error(CG_ERR_INVALID, "dummy_data_param needs one shape or one per top (%zu tops, %zu shapes)", nt, nshape);
  if (p->n_data_filler != 0 && p->n_data_filler != 1 && p->n_data_filler != nt)
    return cg_error(CG_ERR_INVALID, "dummy_data_param needs 0, 1 or %zu data_filler entries, got %zu", nt, p->n_data_filler);
  if (!p->n_shape && (p->n_channels != p->n_num || p->n_height != p->n_num || p->n_width != p->n_num))
    return cg_error(CG_ERR_INVALID, "dummy_data_param: num, channels, height and width must be given equally often");
  dummy_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  l->priv = s;
  for (size_t i = 0; i < nt; i++) {
    size_t k = nshape == 1 ? 0 : i;
    int rc;
    if (p->n_shape) {
      rc = shape_from_proto(p->shape[k], top[i]);
    } else {
      rc = cg_blob_reshape4(top[i], (int)p->num[k], (int)p->channels[k], (int)p->height[k], (int)p->width[k]);
    }
    if (rc) return rc;
    const Caffe__FillerParameter *fp = p->n_data_filler == 0 ? NULL : p->data_filler[p->n_data_filler == 1 ? 0 : i];
    rc = cg_filler_from_param(fp, &s->fillers[i]);
    if (rc) return rc;
    s->refill[i] = s->fillers[i].type != CG_FILLER_CONSTANT;
    rc = cg_filler_fill(&s->fillers[i], top[i], &l->rng);
    if (rc) return rc;
  }
  return CG_OK;
}

static int dummy_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom;
  dummy_state *s = l->priv;
  for (int i = 0; i < l->num_tops; i++) {
    int rc = s->refill[i] ? cg_filler_fill(&s->fillers[i], top[i], &l->rng) : CG_OK;
    if (rc) return rc;
  }
  return CG_OK;
}

static void free_priv(cg_layer *l) { free(l->priv); }

const cg_layer_ops cg_layer_dummy_data = {
    .type = "DummyData", .min_bottoms = 0, .max_bottoms = 0, .min_tops = 1, .max_tops = -1,
    .setup = dummy_setup, .reshape = input_reshape, .forward = dummy_forward, .backward = no_backward,
    .destroy = free_priv,
};
