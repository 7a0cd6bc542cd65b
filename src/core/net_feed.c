/* cg_net_feed and friends: the public way to hand arrays to a net's MemoryData
 * layers (the layer's own cg_memory_data_feed is internal). */
#include "caffegrid/feed.h"

#include <string.h>

#include "core/net_impl.h"
#include "layers/memory_data.h"

static const char *src_name(const cg_net *net) { return net->opt.source_name ? net->opt.source_name : "net"; }

int cg_net_feed_layer(const cg_net *net, const char *layer) {
  for (int i = 0; i < net->num_layers; i++) {
    const cg_layer *l = &net->layers[i].layer;
    bool memory = strcmp(l->ops->type, "MemoryData") == 0;
    if (!layer && memory) return i;
    if (layer && strcmp(l->name, layer) == 0) {
      if (memory) return i;
      return cg_error(CG_ERR_INVALID, "%s: layer '%s' is a %s layer; only MemoryData layers can be fed", src_name(net),
                      layer, l->ops->type);
    }
  }
  if (!layer) return cg_error(CG_ERR_NOT_FOUND, "%s: the net has no MemoryData layer to feed", src_name(net));
  return cg_error(CG_ERR_NOT_FOUND, "%s: no layer named '%s' in this net", src_name(net), layer);
}

int cg_net_feed_shape(const cg_net *net, const char *layer, cg_feed_shape *shape) {
  int i = cg_net_feed_layer(net, layer);
  if (i < 0) return i;
  const Caffe__MemoryDataParameter *p = net->layers[i].layer.param->memory_data_param;
  /* the layer's setup has already insisted on these fields */
  shape->batch = (int)p->batch_size, shape->channels = (int)p->channels;
  shape->height = (int)p->height, shape->width = (int)p->width;
  const Caffe__TransformationParameter *t = net->layers[i].layer.param->transform_param;
  if (t && t->crop_size) shape->height = shape->width = (int)t->crop_size; /* the top's, as the layer's setup made it */
  return CG_OK;
}

int cg_net_feed(cg_net *net, const char *layer, const float *data, const float *labels, int n) {
  int i = cg_net_feed_layer(net, layer);
  if (i < 0) return i;
  if (!data) return cg_error(CG_ERR_INVALID, "%s: layer '%s': no data given", src_name(net), net->layers[i].layer.name);
  int rc = cg_memory_data_feed(&net->layers[i].layer, data, labels, n);
  return rc ? cg_error_wrap(rc, "%s: ", src_name(net)) : CG_OK;
}

int cg_net_feed_source(cg_net *net, const char *layer, const char *source_type, const char *location,
                       const cg_feed_source_options *options) {
  int i = cg_net_feed_layer(net, layer);
  if (i < 0) return i;
  if (!source_type || !location)
    return cg_error(CG_ERR_INVALID, "%s: layer '%s': no source given", src_name(net), net->layers[i].layer.name);
  static const cg_feed_source_options defaults = {0};
  int rc = cg_memory_data_feed_source(&net->layers[i].layer, source_type, location, options ? options : &defaults);
  return rc ? cg_error_wrap(rc, "%s: ", src_name(net)) : CG_OK;
}
