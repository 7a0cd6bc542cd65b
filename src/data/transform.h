/* Caffe's DataTransformer over every record kind: a record is first loaded into
 * pixels (Datum raw bytes, Datum float_data, encoded Datum or image file decoded,
 * raw pixels; colour forced and resized when asked), then transformed into floats:
 * crop (random in TRAIN, centre in TEST), mirror, mean subtraction (mean_file
 * .binaryproto or per-channel mean_value), scale, in Caffe's order. */
#ifndef CG_TRANSFORM_H
#define CG_TRANSFORM_H

#include <stdbool.h>

#include "core/rng.h"
#include "data/image_decode.h"
#include "data/source.h"
#include "proto/caffe.pb-c.h"

typedef struct cg_transform {
  float scale;
  bool mirror;
  int crop_size;
  bool train;
  float *mean; /* C*H*W from mean_file, or NULL */
  int mean_c, mean_h, mean_w;
  float mean_values[4];
  int num_mean_values;
  cg_color_mode color;    /* force_color / force_gray, for decoded images and raw 8-bit pixels; NATIVE = as stored */
  int resize_h, resize_w; /* set by the layer (ImageData new_height/new_width); 0 = keep */
} cg_transform;

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

/* p may be NULL (identity). Loads the mean file; errors name it. */
int cg_transform_init(cg_transform *t, const Caffe__TransformationParameter *p, bool train);
void cg_transform_free(cg_transform *t);
/* Output shape for an input of channels x height x width. */
void cg_transform_out_shape(const cg_transform *t, int channels, int height, int width, int *out_h, int *out_w);

/* Loads a record into px: unpacks a Datum, decodes encoded images (t->color), and
 * resizes to t->resize_h x t->resize_w when set. `where` names the record in errors. */
int cg_transform_load(const cg_transform *t, const cg_record *rec, cg_pixels *px, const char *where);
/* Crops, mirrors, subtracts the mean and scales px into out[C * out_h * out_w]
 * (shape from cg_transform_out_shape). Draws mirror, then the crop offsets, from rng. */
int cg_transform_apply(const cg_transform *t, const cg_pixels *px, float *out, cg_rng *rng, const char *where);
void cg_pixels_free(cg_pixels *px);

/* Transforms one unpacked Datum (raw or float_data; encoded ones are decoded) into
 * out: cg_transform_load + cg_transform_apply for callers holding a Datum. */
int cg_transform_datum(const cg_transform *t, const Caffe__Datum *d, float *out, cg_rng *rng, const char *where);

#endif
