/* CaffeOnSpark's CoSData layer, in the form its image nets use (one image top,
 * one label top), read as the MemoryData layer it amounts to: the image top's shape
 * becomes memory_data_param's, its transform_param the layer's, and cos_data_param's
 * batch_size and source carry over; rows then enter through the same C pipeline
 * (caffegrid.spark, cg_net_feed_source). Other forms (several image tops, string
 * tops) stay CoSData layers, which refuse to build, naming the layer and why (a
 * weights file holding one still loads). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "proto/upgrade.h"

typedef Caffe__CoSDataParameter__TopBlob top_blob;

static bool is_image(const top_blob *t) {
  switch (t->type) {
    case CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__RAW_IMAGE:
    case CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__ENCODED_IMAGE:
    case CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__ENCODED_IMAGE_WITH_DIM:
    case CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__FLOAT_ARRAY:
    case CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__INT_ARRAY:
      return true;
    default:
      return false;
  }
}

static bool is_label(const top_blob *t) {
  return t->type == CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__INT || t->type == CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__FLOAT;
}

const char *cg_cos_data_form_problem(const Caffe__LayerParameter *l) {
  const Caffe__CoSDataParameter *c = l->cos_data_param;
  if (!c) return "it has no cos_data_param";
  if (c->n_top != 2 || l->n_top != 2) return "it does not have exactly two tops";
  const top_blob *image = c->top[0], *label = c->top[1];
  if (!is_image(image) || !is_label(label)) return "its tops are not an image then a label";
  if (image->channels <= 0 || image->height <= 0 || image->width <= 0)
    return "its image top does not give channels, height and width";
  if (image->transpose || (image->has_sample_num_axes && image->sample_num_axes != 3))
    return "its image top is transposed or not 3-axis";
  if (image->transform_param && l->transform_param) return "both the layer and its image top have a transform_param";
  if (c->batch_size == 0) return "cos_data_param has no batch_size";
  return NULL;
}

static int to_memory_data(Caffe__LayerParameter *l, const char *src) {
  Caffe__CoSDataParameter *c = l->cos_data_param;
  top_blob *image = c->top[0];
  Caffe__MemoryDataParameter *m = malloc(sizeof *m);
  if (!m) return cg_error(CG_ERR_NOMEM, "%s: out of memory while upgrading", src);
  caffe__memory_data_parameter__init(m);
  m->has_batch_size = m->has_channels = m->has_height = m->has_width = 1;
  m->batch_size = c->batch_size;
  m->channels = (uint32_t)image->channels, m->height = (uint32_t)image->height, m->width = (uint32_t)image->width;
  m->source = c->source, c->source = NULL; /* moved: freed with the MemoryData parameter */
  m->has_image_encoded = 1;
  m->image_encoded = image->type == CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__ENCODED_IMAGE ||
                     image->type == CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__ENCODED_IMAGE_WITH_DIM;
  if (l->memory_data_param) protobuf_c_message_free_unpacked(&l->memory_data_param->base, NULL);
  l->memory_data_param = m;
  if (image->transform_param) l->transform_param = image->transform_param, image->transform_param = NULL;
  char *type = strdup("MemoryData");
  if (!type) return cg_error(CG_ERR_NOMEM, "%s: out of memory while upgrading", src);
  free(l->type);
  l->type = type;
  CG_LOG_INFO("%s: CoSData layer '%s' is read as a MemoryData layer of %dx%dx%d records, batch %u", src, l->name,
              image->channels, image->height, image->width, m->batch_size);
  return CG_OK;
}

int cg_upgrade_cos_data(Caffe__NetParameter *net, const char *src) {
  for (size_t i = 0; i < net->n_layer; i++) {
    Caffe__LayerParameter *l = net->layer[i];
    if (!l->type || strcmp(l->type, "CoSData") != 0 || cg_cos_data_form_problem(l)) continue;
    int rc = to_memory_data(l, src);
    if (rc) return rc;
  }
  return CG_OK;
}
