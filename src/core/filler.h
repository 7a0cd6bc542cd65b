/* Fillers: how a learnable blob is initialised (Caffe's FillerParameter). */
#ifndef CG_FILLER_H
#define CG_FILLER_H

#include "caffegrid/blob.h"
#include "caffegrid/rng.h"
#include "proto/caffe.pb-c.h"

typedef enum {
  CG_FILLER_CONSTANT,
  CG_FILLER_UNIFORM,
  CG_FILLER_GAUSSIAN,
  CG_FILLER_XAVIER,
  CG_FILLER_MSRA,
  CG_FILLER_POSITIVE_UNITBALL,
  CG_FILLER_BILINEAR,
} cg_filler_type;

typedef struct cg_filler {
  cg_filler_type type;
  float value, min, max, mean, std;
  int sparse;        /* gaussian only: expected non-zeros per output, -1 = dense */
  int variance_norm; /* CAFFE__FILLER_PARAMETER__VARIANCE_NORM__FAN_IN / FAN_OUT / AVERAGE */
} cg_filler;

/* A constant filler with this value (what a layer uses when the prototxt gives none). */
cg_filler cg_filler_constant(float value);
/* From a prototxt FillerParameter; NULL gives Caffe's default (constant 0).
 * Errors on an unknown type name (names the type and lists the known ones). */
int cg_filler_from_param(const Caffe__FillerParameter *p, cg_filler *out);
/* Fills b->data. Fan-in/out follow Caffe: fan_in = count / shape[0], fan_out = count / shape[1]. */
int cg_filler_fill(const cg_filler *f, cg_blob *b, cg_rng *rng);

#endif
