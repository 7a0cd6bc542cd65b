/* Records -> pixels -> floats with Caffe's transformation order:
 * value = (x - mean) * scale, read at the crop offset, mirrored columns when chosen. */
#include "data/transform.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "proto/proto_io.h"

int cg_transform_init(cg_transform *t, const Caffe__TransformationParameter *p, bool train) {
  memset(t, 0, sizeof *t);
  t->scale = 1;
  t->train = train;
  t->color = CG_COLOR_NATIVE;
  if (!p) return CG_OK;
  t->scale = p->has_scale ? p->scale : 1;
  t->mirror = p->mirror;
  t->crop_size = (int)p->crop_size;
  if (p->force_color && p->force_gray)
    return cg_error(CG_ERR_INVALID, "transform_param: force_color and force_gray cannot both be set");
  if (p->force_color) t->color = CG_COLOR_BGR;
  if (p->force_gray) t->color = CG_COLOR_GRAY;
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
    int64_t c = bp->channels, h = bp->height, w = bp->width;
    if (bp->shape && bp->shape->n_dim >= 3) {
      size_t n = bp->shape->n_dim;
      c = bp->shape->dim[n - 3], h = bp->shape->dim[n - 2], w = bp->shape->dim[n - 1];
    }
    /* each dimension fits an int and the product cannot wrap: (2^31)^3 < 2^93, so bound by n_data first */
    bool dims_ok = c > 0 && h > 0 && w > 0 && c <= INT32_MAX && h <= INT32_MAX && w <= INT32_MAX;
    size_t count = 0;
    if (dims_ok && __builtin_mul_overflow((size_t)c, (size_t)h, &count)) dims_ok = false;
    if (dims_ok && __builtin_mul_overflow(count, (size_t)w, &count)) dims_ok = false;
    if (!dims_ok || bp->n_data != count) {
      size_t n_data = bp->n_data;
      protobuf_c_message_free_unpacked(msg, NULL);
      return cg_error(CG_ERR_CORRUPT, "mean file '%s': shape %lldx%lldx%lld does not match its %zu values", p->mean_file,
                      (long long)c, (long long)h, (long long)w, n_data);
    }
    t->mean = malloc(count * sizeof(float));
    if (!t->mean) {
      protobuf_c_message_free_unpacked(msg, NULL);
      return cg_error(CG_ERR_NOMEM, "out of memory");
    }
    memcpy(t->mean, bp->data, count * sizeof(float));
    t->mean_c = (int)c, t->mean_h = (int)h, t->mean_w = (int)w;
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  return CG_OK;
}

void cg_transform_free(cg_transform *t) {
  free(t->mean);
  t->mean = NULL;
}

int cg_transform_new(const cg_transform_options *o, bool train, cg_transform **out) {
  *out = NULL;
  Caffe__TransformationParameter p = CAFFE__TRANSFORMATION_PARAMETER__INIT;
  float means[4];
  if (o) {
    if (o->num_mean_values < 0 || o->num_mean_values > 4 || (o->num_mean_values && !o->mean_values))
      return cg_error(CG_ERR_INVALID, "transform options: %d mean values (0 to 4 are allowed)", o->num_mean_values);
    if (o->crop_size < 0 || o->resize_height < 0 || o->resize_width < 0)
      return cg_error(CG_ERR_INVALID, "transform options: crop_size %d, resize %dx%d (none may be negative)",
                      o->crop_size, o->resize_height, o->resize_width);
    p.has_scale = o->scale != 0, p.scale = o->scale;
    p.has_mirror = true, p.mirror = o->mirror;
    p.has_crop_size = true, p.crop_size = (uint32_t)o->crop_size;
    p.mean_file = (char *)o->mean_file;
    for (int i = 0; i < o->num_mean_values; i++) means[i] = o->mean_values[i];
    p.n_mean_value = (size_t)o->num_mean_values, p.mean_value = means;
    p.has_force_color = true, p.force_color = o->color == CG_COLOR_BGR;
    p.has_force_gray = true, p.force_gray = o->color == CG_COLOR_GRAY;
  }
  cg_transform *t = calloc(1, sizeof *t);
  if (!t) return cg_error(CG_ERR_NOMEM, "out of memory for a transform");
  int rc = cg_transform_init(t, o ? &p : NULL, train);
  if (rc) {
    cg_transform_delete(t);
    return rc;
  }
  if (o) t->resize_h = o->resize_height, t->resize_w = o->resize_width;
  *out = t;
  return CG_OK;
}

void cg_transform_delete(cg_transform *t) {
  if (!t) return;
  cg_transform_free(t);
  free(t);
}

void cg_pixels_free(cg_pixels *px) {
  cg_image_free(&px->img);
  cg_image_free(&px->resized);
  free(px->floats);
  memset(px, 0, sizeof *px);
}

void cg_transform_out_shape(const cg_transform *t, int channels, int height, int width, int *out_h, int *out_w) {
  (void)channels;
  *out_h = t->crop_size ? t->crop_size : height;
  *out_w = t->crop_size ? t->crop_size : width;
}

/* c * h * w for a shape read from a record: 0 when a dimension is not positive,
 * SIZE_MAX (which no buffer's length equals) when the product overflows. */
static size_t chw_count(int c, int h, int w) {
  size_t n;
  if (c <= 0 || h <= 0 || w <= 0) return 0;
  if (__builtin_mul_overflow((size_t)c, (size_t)h, &n) || __builtin_mul_overflow(n, (size_t)w, &n)) return SIZE_MAX;
  return n;
}

/* Float values are the user's data: a NaN or infinity among them would train the
 * net into NaN silently, so the record is refused (or skipped in skip mode). */
static int set_floats(cg_pixels *px, const float *src, int c, int h, int w, const char *where) {
  size_t n = (size_t)c * h * w;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(src[i]))
      return cg_error(CG_ERR_CORRUPT, "record %s: value %zu of %zu is %s (input values must be finite)", where, i, n,
                      isnan(src[i]) ? "NaN" : "infinite");
  if (n > px->floats_cap) {
    float *grown = realloc(px->floats, n * sizeof(float));
    if (!grown) return cg_error(CG_ERR_NOMEM, "out of memory");
    px->floats = grown;
    px->floats_cap = n;
  }
  memcpy(px->floats, src, n * sizeof(float));
  px->is_float = true;
  px->channels = c, px->height = h, px->width = w;
  return CG_OK;
}

static int set_bytes(cg_pixels *px, const uint8_t *src, int c, int h, int w) {
  int rc = cg_image_reserve(&px->img, c, h, w);
  if (rc) return rc;
  memcpy(px->img.data, src, (size_t)c * h * w);
  return CG_OK;
}

/* Colour conversion and resizing of the 8-bit image in px->img; sets px's shape. */
static int finish_bytes(const cg_transform *t, cg_pixels *px, bool convert_color, const char *where) {
  int rc = convert_color ? cg_image_convert(&px->img, t->color) : CG_OK;
  if (!rc && t->resize_h > 0 && t->resize_w > 0 && (px->img.height != t->resize_h || px->img.width != t->resize_w)) {
    rc = cg_image_resize(&px->img, t->resize_h, t->resize_w, &px->resized);
    if (!rc) { /* swap so img holds the result and the old buffer becomes scratch */
      cg_image tmp = px->img;
      px->img = px->resized;
      px->resized = tmp;
    }
  }
  if (rc) return cg_error_wrap(rc, "record %s: ", where);
  px->is_float = false;
  px->channels = px->img.channels, px->height = px->img.height, px->width = px->img.width;
  return CG_OK;
}

static int load_datum(const cg_transform *t, const Caffe__Datum *d, cg_pixels *px, const char *where) {
  px->label = (float)d->label;
  px->has_label = true;
  if (d->encoded) {
    int rc = cg_image_decode(d->data.data, d->data.len, t->color, where, &px->img);
    if (rc) return rc;
    return finish_bytes(t, px, false, where);
  }
  int c = d->channels, h = d->height, w = d->width;
  bool bytes = d->has_data && d->data.len > 0;
  size_t count = chw_count(c, h, w);
  if (c <= 0 || h <= 0 || w <= 0 || (bytes ? d->data.len != count : d->n_float_data != count))
    return cg_error(CG_ERR_CORRUPT, "record %s: Datum says %dx%dx%d but holds %zu values", where, c, h, w,
                    bytes ? d->data.len : d->n_float_data);
  if (bytes) {
    int rc = set_bytes(px, d->data.data, c, h, w);
    if (rc) return rc;
    return finish_bytes(t, px, t->color != CG_COLOR_NATIVE, where);
  }
  if (t->resize_h || t->color != CG_COLOR_NATIVE)
    return cg_error(CG_ERR_UNSUPPORTED, "record %s: float_data Datum cannot be resized or colour-converted", where);
  return set_floats(px, d->float_data, c, h, w, where);
}

int cg_transform_load(const cg_transform *t, const cg_record *rec, cg_pixels *px, const char *where) {
  px->has_label = rec->has_label;
  px->label = rec->label;
  switch (rec->kind) {
    case CG_RECORD_DATUM: {
      Caffe__Datum *d = caffe__datum__unpack(NULL, rec->num_bytes, rec->bytes);
      if (!d) return cg_error(CG_ERR_CORRUPT, "record %s is not a valid Datum (%zu bytes)", where, rec->num_bytes);
      int rc = load_datum(t, d, px, where);
      protobuf_c_message_free_unpacked(&d->base, NULL);
      return rc;
    }
    case CG_RECORD_IMAGE: {
      int rc = cg_image_decode(rec->bytes, rec->num_bytes, t->color, where, &px->img);
      if (rc) return rc;
      return finish_bytes(t, px, false, where);
    }
    case CG_RECORD_PIXELS: {
      size_t count = chw_count(rec->channels, rec->height, rec->width);
      if (count == 0 || rec->num_bytes != count)
        return cg_error(CG_ERR_CORRUPT, "record %s: %dx%dx%d pixels but %zu bytes", where, rec->channels, rec->height,
                        rec->width, rec->num_bytes);
      int rc = set_bytes(px, rec->bytes, rec->channels, rec->height, rec->width);
      if (rc) return rc;
      return finish_bytes(t, px, t->color != CG_COLOR_NATIVE, where);
    }
    case CG_RECORD_FLOATS: {
      size_t count = chw_count(rec->channels, rec->height, rec->width);
      if (count == 0 || rec->num_floats != count)
        return cg_error(CG_ERR_CORRUPT, "record %s: %dx%dx%d values but %zu floats", where, rec->channels, rec->height,
                        rec->width, rec->num_floats);
      if (t->resize_h || t->color != CG_COLOR_NATIVE)
        return cg_error(CG_ERR_UNSUPPORTED, "record %s: float records cannot be resized or colour-converted", where);
      return set_floats(px, rec->floats, rec->channels, rec->height, rec->width, where);
    }
  }
  return cg_error(CG_ERR_INVALID, "record %s: unknown record kind %d", where, (int)rec->kind);
}

int cg_transform_apply(const cg_transform *t, const cg_pixels *px, float *out, cg_rng *rng, const char *where) {
  int c = px->channels, h = px->height, w = px->width;
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
  const uint8_t *bytes = px->is_float ? NULL : px->img.data;
  const float *floats = px->is_float ? px->floats : NULL;
  for (int ch = 0; ch < c; ch++) {
    float mean_value = t->num_mean_values ? t->mean_values[t->num_mean_values == 1 ? 0 : ch] : 0;
    for (int y = 0; y < oh; y++) {
      size_t src_row = ((size_t)ch * h + (size_t)(h_off + y)) * (size_t)w + (size_t)w_off;
      float *dst_row = out + ((size_t)ch * oh + (size_t)y) * (size_t)ow;
      for (int x = 0; x < ow; x++) {
        size_t src = src_row + (size_t)x;
        float v = bytes ? (float)bytes[src] : floats[src];
        if (t->mean) v -= t->mean[src];
        dst_row[mirror ? ow - 1 - x : x] = (v - mean_value) * t->scale;
      }
    }
  }
  return CG_OK;
}

int cg_transform_datum(const cg_transform *t, const Caffe__Datum *d, float *out, cg_rng *rng, const char *where) {
  cg_pixels px = {0};
  int rc = load_datum(t, d, &px, where);
  if (!rc) rc = cg_transform_apply(t, &px, out, rng, where);
  cg_pixels_free(&px);
  return rc;
}
