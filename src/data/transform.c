/* Datum -> float pixels with Caffe's transformation order: value = (x - mean) * scale,
 * read at the crop offset, mirrored columns when chosen. */
#include "data/transform.h"

#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "proto/proto_io.h"

int cg_transform_init(cg_transform *t, const Caffe__TransformationParameter *p, bool train) {
  memset(t, 0, sizeof *t);
  t->scale = 1;
  t->train = train;
  if (!p) return CG_OK;
  t->scale = p->has_scale ? p->scale : 1;
  t->mirror = p->mirror;
  t->crop_size = (int)p->crop_size;
  if (p->mean_file && p->mean_file[0] && p->n_mean_value)
    return cg_error(CG_ERR_INVALID, "transform_param: give mean_file or mean_value, not both");
  if (p->n_mean_value > 4) return cg_error(CG_ERR_INVALID, "transform_param: at most 4 mean_value entries");
  t->num_mean_values = (int)p->n_mean_value;
  for (size_t i = 0; i < p->n_mean_value; i++) t->mean_values[i] = p->mean_value[i];
  if (p->mean_file && p->mean_file[0]) {
    ProtobufCMessage *msg = NULL;
    int rc = cg_read_binary(&caffe__blob_proto__descriptor, p->mean_file, &msg);
    if (rc) return cg_error_wrap(rc, "transform_param.mean_file: ");
    Caffe__BlobProto *bp = (Caffe__BlobProto *)msg;
    int c = bp->channels, h = bp->height, w = bp->width;
    if (bp->shape && bp->shape->n_dim >= 3) {
      size_t n = bp->shape->n_dim;
      c = (int)bp->shape->dim[n - 3], h = (int)bp->shape->dim[n - 2], w = (int)bp->shape->dim[n - 1];
    }
    size_t count = (size_t)c * h * w;
    if (c <= 0 || h <= 0 || w <= 0 || bp->n_data != count) {
      protobuf_c_message_free_unpacked(msg, NULL);
      return cg_error(CG_ERR_CORRUPT, "mean file '%s': shape %dx%dx%d does not match its %zu values", p->mean_file, c,
                      h, w, bp->n_data);
    }
    t->mean = malloc(count * sizeof(float));
    memcpy(t->mean, bp->data, count * sizeof(float));
    t->mean_c = c, t->mean_h = h, t->mean_w = w;
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  return CG_OK;
}

void cg_transform_free(cg_transform *t) {
  free(t->mean);
  t->mean = NULL;
}

void cg_transform_out_shape(const cg_transform *t, int channels, int height, int width, int *out_h, int *out_w) {
  (void)channels;
  *out_h = t->crop_size ? t->crop_size : height;
  *out_w = t->crop_size ? t->crop_size : width;
}

int cg_transform_datum(const cg_transform *t, const Caffe__Datum *d, float *out, cg_rng *rng, const char *where) {
  int c = d->channels, h = d->height, w = d->width;
  size_t count = (size_t)c * h * w;
  if (d->encoded) return cg_error(CG_ERR_UNSUPPORTED, "record %s: encoded (JPEG/PNG) Datum needs image decoding", where);
  bool bytes = d->has_data && d->data.len > 0;
  if (c <= 0 || h <= 0 || w <= 0 || (bytes ? d->data.len != count : d->n_float_data != count))
    return cg_error(CG_ERR_CORRUPT, "record %s: Datum says %dx%dx%d but holds %zu values", where, c, h, w,
                    bytes ? d->data.len : d->n_float_data);
  int crop = t->crop_size;
  if (crop && (crop > h || crop > w))
    return cg_error(CG_ERR_SHAPE, "record %s: crop_size %d is larger than the %dx%d image", where, crop, h, w);
  if (t->mean && (t->mean_c != c || t->mean_h != h || t->mean_w != w))
    return cg_error(CG_ERR_SHAPE, "record %s: image is %dx%dx%d but the mean file is %dx%dx%d", where, c, h, w,
                    t->mean_c, t->mean_h, t->mean_w);
  if (t->num_mean_values > 1 && t->num_mean_values != c)
    return cg_error(CG_ERR_SHAPE, "record %s: %d mean_value entries for %d channels", where, t->num_mean_values, c);
  bool mirror = t->mirror && cg_rng_below(rng, 2);
  int oh = crop ? crop : h, ow = crop ? crop : w, h_off = 0, w_off = 0;
  if (crop) {
    if (t->train) {
      h_off = (int)cg_rng_below(rng, (uint64_t)(h - crop + 1));
      w_off = (int)cg_rng_below(rng, (uint64_t)(w - crop + 1));
    } else {
      h_off = (h - crop) / 2;
      w_off = (w - crop) / 2;
    }
  }
  const uint8_t *px = bytes ? d->data.data : NULL;
  for (int ch = 0; ch < c; ch++) {
    float mean_value = t->num_mean_values ? t->mean_values[t->num_mean_values == 1 ? 0 : ch] : 0;
    for (int y = 0; y < oh; y++) {
      for (int x = 0; x < ow; x++) {
        size_t src = ((size_t)ch * h + h_off + y) * w + w_off + x;
        size_t dst = ((size_t)ch * oh + y) * ow + (mirror ? ow - 1 - x : x);
        float v = px ? (float)px[src] : d->float_data[src];
        if (t->mean) v -= t->mean[src];
        out[dst] = (v - mean_value) * t->scale;
      }
    }
  }
  return CG_OK;
}
