/* caffegrid/caffe_files.h over protobuf-c's generated caffe.proto types, which stay
 * inside the library. */
#include "caffegrid/caffe_files.h"

#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "proto/proto_io.h"

int cg_datum_pack(const cg_datum *d, uint8_t **out, size_t *len) {
  *out = NULL, *len = 0;
  Caffe__Datum m = CAFFE__DATUM__INIT;
  /* shape fields only when set, as Caffe leaves them out of encoded Datums */
  m.has_channels = d->channels != 0, m.has_height = d->height != 0, m.has_width = d->width != 0;
  m.channels = d->channels, m.height = d->height, m.width = d->width;
  m.has_label = d->has_label, m.label = d->label;
  m.has_encoded = d->encoded, m.encoded = d->encoded;
  if (d->data) m.has_data = 1, m.data.data = (uint8_t *)d->data, m.data.len = d->data_len;
  m.n_float_data = d->float_data ? d->num_floats : 0, m.float_data = (float *)d->float_data;
  size_t n = caffe__datum__get_packed_size(&m);
  *out = malloc(n ? n : 1);
  if (!*out) return cg_error(CG_ERR_NOMEM, "out of memory packing a %zu-byte Datum", n);
  *len = caffe__datum__pack(&m, *out);
  return CG_OK;
}

int cg_datum_unpack(const uint8_t *bytes, size_t len, const char *where, cg_datum *out, void **owner) {
  memset(out, 0, sizeof *out);
  *owner = NULL;
  Caffe__Datum *m = caffe__datum__unpack(NULL, len, bytes);
  if (!m) return cg_error(CG_ERR_CORRUPT, "%s: not a valid Datum (%zu bytes)", where, len);
  out->channels = m->channels, out->height = m->height, out->width = m->width;
  out->label = m->label, out->has_label = m->has_label, out->encoded = m->encoded;
  if (m->has_data) out->data = m->data.data, out->data_len = m->data.len;
  if (m->n_float_data) out->float_data = m->float_data, out->num_floats = m->n_float_data;
  *owner = m;
  return CG_OK;
}

void cg_datum_free(void *owner) {
  if (owner) protobuf_c_message_free_unpacked(owner, NULL);
}

static void describe_blob(const Caffe__BlobProto *b, cg_file_blob *out) {
  memset(out, 0, sizeof *out);
  if (b->shape) {
    out->num_axes = (int)b->shape->n_dim;
    for (size_t i = 0; i < b->shape->n_dim && i < CG_BLOB_MAX_AXES; i++) out->shape[i] = b->shape->dim[i];
  } else {
    out->num_axes = 4;
    out->shape[0] = b->num, out->shape[1] = b->channels, out->shape[2] = b->height, out->shape[3] = b->width;
  }
  double sum = 0;
  for (size_t i = 0; i < b->n_data; i++) sum += b->data[i];
  for (size_t i = 0; i < b->n_double_data; i++) sum += b->double_data[i];
  out->count = b->n_data ? b->n_data : b->n_double_data;
  if (b->n_data + b->n_double_data) out->mean = sum / (double)(b->n_data + b->n_double_data);
}

static char *copy_string(const char *s) {
  return strdup(s ? s : "");
}

static int describe_layer(const char *name, const char *type, size_t n_blobs, Caffe__BlobProto *const *blobs,
                          cg_file_layer *out) {
  out->name = copy_string(name), out->type = copy_string(type);
  out->blobs = n_blobs ? calloc(n_blobs, sizeof *out->blobs) : NULL;
  if (!out->name || !out->type || (n_blobs && !out->blobs)) return cg_error(CG_ERR_NOMEM, "out of memory");
  out->num_blobs = (int)n_blobs;
  for (size_t b = 0; b < n_blobs; b++) describe_blob(blobs[b], &out->blobs[b]);
  return CG_OK;
}

static int read_model(const Caffe__NetParameter *net, cg_caffe_file *f) {
  f->kind = CG_CAFFE_FILE_MODEL;
  f->net_name = copy_string(net->name);
  f->v1_layers = net->n_layers > 0;
  size_t n = net->n_layer + net->n_layers;
  f->layers = calloc(n, sizeof *f->layers);
  if (!f->net_name || !f->layers) return cg_error(CG_ERR_NOMEM, "out of memory");
  f->num_layers = (int)n;
  int rc = CG_OK;
  for (size_t i = 0; i < net->n_layer && !rc; i++) {
    const Caffe__LayerParameter *l = net->layer[i];
    rc = describe_layer(l->name, l->type, l->n_blobs, l->blobs, &f->layers[i]);
  }
  for (size_t i = 0; i < net->n_layers && !rc; i++) {
    const Caffe__V1LayerParameter *l = net->layers[i];
    rc = describe_layer(l->name, "", l->n_blobs, l->blobs, &f->layers[net->n_layer + i]);
  }
  return rc;
}

int cg_caffe_file_read(const uint8_t *data, size_t len, const char *name, cg_caffe_file **out) {
  *out = NULL;
  cg_caffe_file *f = calloc(1, sizeof *f);
  if (!f) return cg_error(CG_ERR_NOMEM, "out of memory");
  int rc = CG_ERR_UNSUPPORTED;
  Caffe__NetParameter *net = caffe__net_parameter__unpack(NULL, len, data);
  if (net && (net->n_layer || net->n_layers)) rc = read_model(net, f);
  if (net) protobuf_c_message_free_unpacked(&net->base, NULL);
  if (rc == CG_ERR_UNSUPPORTED) {
    Caffe__SolverState *st = caffe__solver_state__unpack(NULL, len, data);
    if (st && st->has_iter) {
      f->kind = CG_CAFFE_FILE_SOLVER_STATE;
      f->iter = st->iter, f->num_history = (int)st->n_history;
      f->learned_net = copy_string(st->learned_net);
      rc = f->learned_net ? CG_OK : cg_error(CG_ERR_NOMEM, "out of memory");
    }
    if (st) protobuf_c_message_free_unpacked(&st->base, NULL);
  }
  if (rc == CG_ERR_UNSUPPORTED) {
    Caffe__BlobProto *b = caffe__blob_proto__unpack(NULL, len, data);
    if (b && (b->n_data || b->n_double_data)) {
      f->kind = CG_CAFFE_FILE_BLOB;
      describe_blob(b, &f->blob);
      rc = CG_OK;
    }
    if (b) protobuf_c_message_free_unpacked(&b->base, NULL);
  }
  if (rc == CG_ERR_UNSUPPORTED)
    rc = cg_error(CG_ERR_UNSUPPORTED, "'%s' is not a Caffe model, solver state or blob (BlobProto) file", name);
  if (rc) {
    cg_caffe_file_free(f);
    return rc;
  }
  *out = f;
  return CG_OK;
}

void cg_caffe_file_free(cg_caffe_file *f) {
  if (!f) return;
  for (int i = 0; i < f->num_layers; i++) {
    free((char *)f->layers[i].name);
    free((char *)f->layers[i].type);
    free(f->layers[i].blobs);
  }
  free(f->layers);
  free((char *)f->net_name);
  free((char *)f->learned_net);
  free(f);
}

int cg_mean_file_write(const char *path, int channels, int height, int width, const float *values) {
  if (channels <= 0 || height <= 0 || width <= 0)
    return cg_error(CG_ERR_INVALID, "mean file '%s': shape %dx%dx%d (every dimension must be positive)", path,
                    channels, height, width);
  Caffe__BlobProto bp = CAFFE__BLOB_PROTO__INIT;
  bp.has_num = bp.has_channels = bp.has_height = bp.has_width = 1;
  bp.num = 1, bp.channels = channels, bp.height = height, bp.width = width;
  bp.n_data = (size_t)channels * (size_t)height * (size_t)width;
  bp.data = (float *)values;
  return cg_write_binary_atomic(&bp.base, path);
}
