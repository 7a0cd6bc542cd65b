/* Caffe's DataTransformer over every record kind (caffegrid/source.h): a record is
 * first loaded into pixels (a Datum's raw bytes or float_data, an encoded Datum or
 * image file decoded, raw pixels; colour forced and resized when asked), then
 * transformed into floats: crop (random in TRAIN, centred in TEST), mirror, mean
 * subtraction (a mean_file .binaryproto or per-channel mean_value), scale, in
 * Caffe's order. The Data layers, the prefetcher and every door share this code. */
#ifndef CAFFEGRID_TRANSFORM_H
#define CAFFEGRID_TRANSFORM_H

#include <stdbool.h>

#include "caffegrid/api.h"
#include "caffegrid/image.h"
#include "caffegrid/rng.h"
#include "caffegrid/source.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef struct cg_transform cg_transform;

/* Caffe's transform_param, field for field. A zeroed struct (scale 0 read as 1) is
 * the identity. */
typedef struct cg_transform_options {
  float scale;               /* 0 = 1 */
  bool mirror;               /* random horizontal flip in TRAIN */
  int crop_size;             /* 0 = no crop */
  const char *mean_file;     /* a .binaryproto, or NULL */
  const float *mean_values;  /* per channel (one value = every channel), or NULL */
  int num_mean_values;       /* 0..4 */
  cg_color_mode color;       /* force_color (CG_COLOR_BGR) / force_gray (CG_COLOR_GRAY) */
  int resize_height, resize_width; /* decoded images resized first; 0 = keep */
} cg_transform_options;

/* A transform for TRAIN (`train`: random crops and mirrors) or TEST. `options` may
 * be NULL (identity). Loads the mean file; errors name it. */
int cg_transform_new(const cg_transform_options *options, bool train, cg_transform **out);
void cg_transform_delete(cg_transform *t); /* NULL is a no-op */
/* Output shape for an input of channels x height x width. */
void cg_transform_out_shape(const cg_transform *t, int channels, int height, int width, int *out_h, int *out_w);

/* A record loaded into pixels: 8-bit (img) or float (floats), channel-first.
 * Buffers are owned and reused between loads; zero it before first use. */
typedef struct cg_pixels {
  int channels, height, width;
  bool is_float;
  cg_image img;
  cg_image resized; /* scratch for resizing */
  float *floats;
  size_t floats_cap;
  float label;
  bool has_label;
} cg_pixels;

/* Loads a record into px: unpacks a Datum, decodes encoded images (the transform's
 * colour mode), and resizes when asked. `where` names the record in errors. */
int cg_transform_load(const cg_transform *t, const cg_record *rec, cg_pixels *px, const char *where);
/* Crops, mirrors, subtracts the mean and scales px into out[C * out_h * out_w]
 * (shape from cg_transform_out_shape). Draws mirror, then the crop offsets, from rng. */
int cg_transform_apply(const cg_transform *t, const cg_pixels *px, float *out, cg_rng *rng, const char *where);
void cg_pixels_free(cg_pixels *px);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
