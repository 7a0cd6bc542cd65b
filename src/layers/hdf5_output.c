/* HDF5Output: Caffe's layer writing its two bottoms to hdf5_output_param.file_name
 * as datasets "data" and "label" (float32, the bottoms' shapes). The file is
 * created (truncated) at setup as in Caffe; where Caffe can write only once, each
 * forward here appends its batch as new rows, so a whole test run is kept. */
#include <stdlib.h>

#include "core/layer.h"
#include "data/hdf5_source.h"

static int output_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)bottom, (void)top;
  const Caffe__HDF5OutputParameter *p = l->param->hdf5_output_param;
  if (!p || !p->file_name || !p->file_name[0]) return cg_error(CG_ERR_INVALID, "needs hdf5_output_param.file_name");
  cg_hdf5_writer *w;
  int rc = cg_hdf5_writer_open(p->file_name, &w);
  if (rc) return rc;
  l->priv = w;
  return CG_OK;
}

static int output_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)l, (void)top;
  if (bottom[0]->num_axes < 1 || bottom[1]->num_axes < 1 || bottom[0]->shape[0] != bottom[1]->shape[0])
    return cg_error(CG_ERR_SHAPE, "the data and label bottoms must have the same number of rows (%d vs %d)",
                    bottom[0]->num_axes ? bottom[0]->shape[0] : 0, bottom[1]->num_axes ? bottom[1]->shape[0] : 0);
  return CG_OK;
}

static int output_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  (void)top;
  int rc = output_reshape(l, bottom, top);
  if (!rc) rc = cg_hdf5_writer_append(l->priv, "data", bottom[0]->num_axes, bottom[0]->shape, bottom[0]->data);
  if (!rc) rc = cg_hdf5_writer_append(l->priv, "label", bottom[1]->num_axes, bottom[1]->shape, bottom[1]->data);
  return rc;
}

static void output_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  (void)l, (void)top, (void)propagate_down, (void)bottom;
}

static void output_destroy(cg_layer *l) { cg_hdf5_writer_close(l->priv); }

const cg_layer_ops cg_layer_hdf5_output = {
    .type = "HDF5Output", .min_bottoms = 2, .max_bottoms = 2, .min_tops = 0, .max_tops = 0,
    .no_backward_bottoms = 3u,
    .setup = output_setup, .reshape = output_reshape, .forward = output_forward, .backward = output_backward,
    .destroy = output_destroy,
};
