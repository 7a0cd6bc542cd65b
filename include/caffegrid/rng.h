/* Deterministic random numbers (xoshiro256**) owned by whoever needs them:
 * a net, a layer, a data source. Same seed, same stream, on every machine. */
#ifndef CAFFEGRID_RNG_H
#define CAFFEGRID_RNG_H

#include <stddef.h>
#include <stdint.h>
#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef struct cg_rng {
  uint64_t s[4];
} cg_rng;

void cg_rng_seed(cg_rng *r, uint64_t seed);
uint64_t cg_rng_next(cg_rng *r);
/* Uniform in [0, 1). */
double cg_rng_uniform01(cg_rng *r);
/* Uniform in [lo, hi). */
float cg_rng_uniform(cg_rng *r, float lo, float hi);
/* n uniforms: the same values as n calls of cg_rng_uniform (DummyData refills its
 * blobs every pass; one call per element took 3.6 ns of it). */
void cg_rng_uniform_fill(cg_rng *r, float lo, float hi, float *out, size_t n);
float cg_rng_gaussian(cg_rng *r, float mean, float std);
/* n gaussians: the same draws as n calls of cg_rng_gaussian, transformed four at a
 * time by glibc's vector log and cos (within 4 ulp of the scalar ones in double, so
 * the floats agree but for rare last-bit roundings; fillers refill DummyData every
 * pass, where the scalar transform took 13% of CIFAR-10 quick's iteration). */
void cg_rng_gaussian_fill(cg_rng *r, float mean, float std, float *out, size_t n);
/* Uniform integer in [0, n). */
uint64_t cg_rng_below(cg_rng *r, uint64_t n);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
