/* Caffe's DataTransformer for Datum records: crop (random in TRAIN, centre in
 * TEST), mirror, mean subtraction (mean_file .binaryproto or mean_value), scale. */
#ifndef CG_TRANSFORM_H
#define CG_TRANSFORM_H

#include <stdbool.h>

#include "core/rng.h"
#include "proto/caffe.pb-c.h"

typedef struct cg_transform {
  float scale;
  bool mirror;
  int crop_size;
  bool train;
  float *mean;         /* C*H*W from mean_file, or NULL */
  int mean_c, mean_h, mean_w;
  float mean_values[4];
  int num_mean_values;
} cg_transform;

/* p may be NULL (identity). Loads the mean file; errors name it. */
int cg_transform_init(cg_transform *t, const Caffe__TransformationParameter *p, bool train);
void cg_transform_free(cg_transform *t);
/* Output shape for an input of channels x height x width. */
void cg_transform_out_shape(const cg_transform *t, int channels, int height, int width, int *out_h, int *out_w);
/* Transforms one decoded Datum into out[C * out_h * out_w]. `where` names the record in errors. */
int cg_transform_datum(const cg_transform *t, const Caffe__Datum *d, float *out, cg_rng *rng, const char *where);

#endif
