/* xoshiro256** seeded through splitmix64; Box-Muller for gaussians (no cached
 * second value, so the stream depends only on the number of draws). */
#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void cg_rng_seed(cg_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t cg_rng_next(cg_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double cg_rng_uniform01(cg_rng *r) { return (double)(cg_rng_next(r) >> 11) * 0x1.0p-53; }

float cg_rng_uniform(cg_rng *r, float lo, float hi) {
  float v = (float)(lo + (hi - lo) * cg_rng_uniform01(r));
  return v < hi ? v : lo; /* rounding to float must not reach hi */
}

float cg_rng_gaussian(cg_rng *r, float mean, float std) {
  double u1 = cg_rng_uniform01(r), u2 = cg_rng_uniform01(r);
  if (u1 < 1e-300) u1 = 1e-300;
  double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
  return (float)(mean + std * z);
}

uint64_t cg_rng_below(cg_rng *r, uint64_t n) {
  if (n == 0) return 0;
  uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* rejection removes modulo bias */
  uint64_t x;
  do x = cg_rng_next(r);
  while (x >= limit);
  return x % n;
}
