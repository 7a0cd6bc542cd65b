/* The transform's inside, for the layers that hold one by value and set it up from
 * their parsed transform_param (the public face is caffegrid/transform.h). */
#ifndef CG_TRANSFORM_H
#define CG_TRANSFORM_H

#include <stdbool.h>

#include "caffegrid/transform.h"
#include "proto/caffe.pb-c.h"

struct cg_transform {
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
};

/* p may be NULL (identity). Loads the mean file; errors name it. */
int cg_transform_init(cg_transform *t, const Caffe__TransformationParameter *p, bool train);
void cg_transform_free(cg_transform *t);

/* Transforms one unpacked Datum (raw or float_data; encoded ones are decoded) into
 * out: cg_transform_load + cg_transform_apply for callers holding a Datum. */
int cg_transform_datum(const cg_transform *t, const Caffe__Datum *d, float *out, cg_rng *rng, const char *where);

#endif
