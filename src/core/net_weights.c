/* Weights in and out of a net in Caffe's .caffemodel format (a binary
 * NetParameter whose layers carry BlobProto blobs), matched by layer name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/net_impl.h"
#include "proto/proto_io.h"

/* Shape of a stored blob: BlobShape when present, else Caffe's old 4-d fields. */
static int proto_shape(const Caffe__BlobProto *bp, int *shape) {
  if (bp->shape) {
    if (bp->shape->n_dim > CG_BLOB_MAX_AXES) return -1;
    for (size_t i = 0; i < bp->shape->n_dim; i++) {
      if (bp->shape->dim[i] < 0 || bp->shape->dim[i] > INT32_MAX) return -1;
      shape[i] = (int)bp->shape->dim[i];
    }
    return (int)bp->shape->n_dim;
  }
  shape[0] = bp->num, shape[1] = bp->channels, shape[2] = bp->height, shape[3] = bp->width;
  return 4;
}

static void format_shape(const int *shape, int n, char *buf, size_t size) {
  size_t used = 0;
  long long count = 1;
  buf[0] = '\0';
  for (int i = 0; i < n && used < size; i++, count *= shape[i - 1])
    used += (size_t)snprintf(buf + used, size - used, "%d ", shape[i]);
  if (used < size) snprintf(buf + used, size - used, "(%lld)", count);
}

/* Caffe accepts an old 4-d blob for a target of <= 4 axes when the legacy shapes agree. */
static bool shapes_match(const cg_blob *target, const Caffe__BlobProto *bp, const int *shape, int n) {
  if (bp->shape) {
    if (n != target->num_axes) return false;
    for (int i = 0; i < n; i++)
      if (shape[i] != target->shape[i]) return false;
    return true;
  }
  if (target->num_axes > 4) return false;
  for (int i = 0; i < 4; i++)
    if (shape[i] != cg_blob_legacy_dim(target, i - 4)) return false;
  return true;
}

static cg_net_layer *find_layer(cg_net *net, const char *name) {
  for (int i = 0; i < net->num_layers; i++)
    if (net->layers[i].layer.name && name && strcmp(net->layers[i].layer.name, name) == 0) return &net->layers[i];
  return NULL;
}

int cg_net_copy_weights_from(cg_net *net, const Caffe__NetParameter *weights, const char *source_name) {
  for (size_t i = 0; i < weights->n_layer; i++) {
    const Caffe__LayerParameter *src = weights->layer[i];
    cg_net_layer *target = find_layer(net, src->name);
    if (!target || src->n_blobs == 0) continue; /* Caffe ignores layers the net does not have */
    cg_layer *l = &target->layer;
    if ((int)src->n_blobs != l->num_params)
      return cg_error(CG_ERR_SHAPE, "%s: layer '%s': the weights file has %zu blobs, the net's layer has %d",
                      source_name, src->name, src->n_blobs, l->num_params);
    for (int k = 0; k < l->num_params; k++) {
      const Caffe__BlobProto *bp = src->blobs[k];
      int shape[CG_BLOB_MAX_AXES];
      int n = proto_shape(bp, shape);
      char want[256], got[256];
      if (n < 0) return cg_error(CG_ERR_CORRUPT, "%s: layer '%s': blob %d has an invalid shape", source_name, src->name, k);
      if (!shapes_match(l->params[k], bp, shape, n)) {
        format_shape(shape, n, got, sizeof got);
        cg_blob_shape_string(l->params[k], want, sizeof want);
        return cg_error(CG_ERR_SHAPE,
                        "%s: layer '%s': cannot copy blob %d: shape mismatch, the weights file has %s, the net "
                        "expects %s",
                        source_name, src->name, k, got, want);
      }
      cg_blob *b = l->params[k];
      if (bp->n_data == b->count) {
        memcpy(b->data, bp->data, b->count * sizeof(float));
      } else if (bp->n_double_data == b->count) {
        for (size_t j = 0; j < b->count; j++) b->data[j] = (float)bp->double_data[j];
      } else {
        return cg_error(CG_ERR_CORRUPT, "%s: layer '%s': blob %d holds %zu values, its shape needs %zu", source_name,
                        src->name, k, bp->n_data ? bp->n_data : bp->n_double_data, b->count);
      }
    }
  }
  return CG_OK;
}

int cg_net_load_weights(cg_net *net, const char *path) {
  ProtobufCMessage *msg = NULL;
  int rc = cg_read_binary(&caffe__net_parameter__descriptor, path, &msg);
  if (rc) return rc;
  rc = cg_net_copy_weights_from(net, (Caffe__NetParameter *)msg, path);
  protobuf_c_message_free_unpacked(msg, NULL);
  return rc;
}

static Caffe__BlobProto *blob_to_proto(const cg_blob *b) {
  Caffe__BlobProto *bp = malloc(sizeof *bp);
  caffe__blob_proto__init(bp);
  bp->shape = malloc(sizeof *bp->shape);
  caffe__blob_shape__init(bp->shape);
  bp->shape->n_dim = (size_t)b->num_axes;
  bp->shape->dim = malloc(sizeof(int64_t) * (size_t)(b->num_axes ? b->num_axes : 1));
  for (int i = 0; i < b->num_axes; i++) bp->shape->dim[i] = b->shape[i];
  bp->n_data = b->count;
  bp->data = malloc(sizeof(float) * (b->count ? b->count : 1));
  memcpy(bp->data, b->data, sizeof(float) * b->count);
  return bp;
}

/* Deep copy through the wire format: simple, and exactly what a reader will see. */
static Caffe__LayerParameter *copy_layer_param(const Caffe__LayerParameter *p) {
  size_t size = protobuf_c_message_get_packed_size(&p->base);
  uint8_t *buf = malloc(size ? size : 1);
  protobuf_c_message_pack(&p->base, buf);
  Caffe__LayerParameter *copy = caffe__layer_parameter__unpack(NULL, size, buf);
  free(buf);
  return copy;
}

int cg_net_to_proto(const cg_net *net, Caffe__NetParameter **out) {
  Caffe__NetParameter *np = malloc(sizeof *np);
  caffe__net_parameter__init(np);
  np->name = strdup(net->name);
  np->layer = calloc((size_t)net->num_layers + 1, sizeof *np->layer);
  for (int i = 0; i < net->num_layers; i++) {
    const cg_net_layer *nl = &net->layers[i];
    if (nl->synthesized) continue; /* inserted splits are rebuilt on load */
    Caffe__LayerParameter *lp = copy_layer_param(nl->layer.param);
    if (!lp) {
      protobuf_c_message_free_unpacked(&np->base, NULL);
      return cg_error(CG_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < lp->n_blobs; k++) protobuf_c_message_free_unpacked(&lp->blobs[k]->base, NULL);
    free(lp->blobs);
    lp->n_blobs = (size_t)nl->layer.num_params;
    lp->blobs = calloc(lp->n_blobs + 1, sizeof *lp->blobs);
    for (int k = 0; k < nl->layer.num_params; k++) lp->blobs[k] = blob_to_proto(nl->layer.params[k]);
    np->layer[np->n_layer++] = lp;
  }
  *out = np;
  return CG_OK;
}

int cg_net_save_weights(const cg_net *net, const char *path) {
  Caffe__NetParameter *np = NULL;
  int rc = cg_net_to_proto(net, &np);
  if (rc) return rc;
  rc = cg_write_binary_atomic(&np->base, path);
  protobuf_c_message_free_unpacked(&np->base, NULL);
  return rc;
}
