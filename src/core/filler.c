/* Caffe's fillers over our RNG. Streams differ from Caffe's (boost) RNG, the
 * distributions are the same. */
#include "core/filler.h"

#include <math.h>
#include <string.h>

#include "caffegrid/error.h"

cg_filler cg_filler_constant(float value) {
  cg_filler f = {.type = CG_FILLER_CONSTANT, .value = value, .max = 1, .std = 1, .sparse = -1};
  return f;
}

static const struct {
  const char *name;
  cg_filler_type type;
} filler_names[] = {
    {"constant", CG_FILLER_CONSTANT}, {"uniform", CG_FILLER_UNIFORM},
    {"gaussian", CG_FILLER_GAUSSIAN}, {"xavier", CG_FILLER_XAVIER},
    {"msra", CG_FILLER_MSRA},         {"positive_unitball", CG_FILLER_POSITIVE_UNITBALL},
    {"bilinear", CG_FILLER_BILINEAR},
};

int cg_filler_from_param(const Caffe__FillerParameter *p, cg_filler *out) {
  *out = cg_filler_constant(0);
  if (!p) return CG_OK;
  const char *type = p->type ? p->type : "constant";
  size_t i, n = sizeof filler_names / sizeof filler_names[0];
  for (i = 0; i < n; i++)
    if (strcmp(type, filler_names[i].name) == 0) break;
  if (i == n)
    return cg_error(CG_ERR_INVALID,
                    "unknown filler type '%s' (known: constant, uniform, gaussian, xavier, msra, "
                    "positive_unitball, bilinear)",
                    type);
  out->type = filler_names[i].type;
  out->value = p->value;
  out->min = p->min;
  out->max = p->max;
  out->mean = p->mean;
  out->std = p->std;
  out->sparse = p->sparse;
  out->variance_norm = p->variance_norm;
  return CG_OK;
}

static float scale_by_fan(const cg_filler *f, const cg_blob *b, float numerator) {
  float fan_in = b->num_axes > 0 && b->shape[0] ? (float)b->count / b->shape[0] : 1;
  float fan_out = b->num_axes > 1 && b->shape[1] ? (float)b->count / b->shape[1] : 1;
  float n = fan_in;
  if (f->variance_norm == CAFFE__FILLER_PARAMETER__VARIANCE_NORM__FAN_OUT) n = fan_out;
  if (f->variance_norm == CAFFE__FILLER_PARAMETER__VARIANCE_NORM__AVERAGE) n = (fan_in + fan_out) / 2;
  return sqrtf(numerator / n);
}

int cg_filler_fill(const cg_filler *f, cg_blob *b, cg_rng *rng) {
  float *d = b->data;
  size_t n = b->count;
  switch (f->type) {
    case CG_FILLER_CONSTANT:
      for (size_t i = 0; i < n; i++) d[i] = f->value;
      break;
    case CG_FILLER_UNIFORM:
      cg_rng_uniform_fill(rng, f->min, f->max, d, n);
      break;
    case CG_FILLER_GAUSSIAN: {
      cg_rng_gaussian_fill(rng, f->mean, f->std, d, n);
      if (f->sparse >= 0) {
        /* Keep each weight with probability sparse / num_outputs, as Caffe does. */
        if (b->num_axes < 1 || b->shape[0] == 0) return cg_error(CG_ERR_SHAPE, "sparse gaussian filler needs a 2-d blob");
        double keep = (double)f->sparse / b->shape[0];
        for (size_t i = 0; i < n; i++)
          if (cg_rng_uniform01(rng) >= keep) d[i] = 0;
      }
      break;
    }
    case CG_FILLER_XAVIER: {
      float scale = scale_by_fan(f, b, 3.0f);
      cg_rng_uniform_fill(rng, -scale, scale, d, n);
      break;
    }
    case CG_FILLER_MSRA: {
      float std = scale_by_fan(f, b, 2.0f);
      for (size_t i = 0; i < n; i++) d[i] = cg_rng_gaussian(rng, 0, std);
      break;
    }
    case CG_FILLER_POSITIVE_UNITBALL: {
      size_t rows = b->num_axes > 0 && b->shape[0] ? (size_t)b->shape[0] : 1, dim = n / rows;
      cg_rng_uniform_fill(rng, 0, 1, d, n);
      for (size_t r = 0; r < rows; r++) {
        double sum = 0;
        for (size_t j = 0; j < dim; j++) sum += d[r * dim + j];
        for (size_t j = 0; j < dim && sum > 0; j++) d[r * dim + j] = (float)(d[r * dim + j] / sum);
      }
      break;
    }
    case CG_FILLER_BILINEAR: {
      if (b->num_axes != 4 || b->shape[2] != b->shape[3])
        return cg_error(CG_ERR_SHAPE, "bilinear filler needs a 4-d blob with square kernels");
      int k = b->shape[3];
      int f_int = (k + 1) / 2; /* ceil(k / 2) */
      float factor = (float)f_int;
      float c = (float)(2 * f_int - 1 - f_int % 2) / (2.0f * factor);
      for (size_t i = 0; i < n; i++) {
        float x = (float)(i % (size_t)k), y = (float)((i / (size_t)k) % (size_t)k);
        d[i] = (1 - fabsf(x / factor - c)) * (1 - fabsf(y / factor - c));
      }
      break;
    }
  }
  return CG_OK;
}
