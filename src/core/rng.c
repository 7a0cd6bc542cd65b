/* xoshiro256** seeded through splitmix64; Box-Muller for gaussians (no cached
 * second value, so the stream depends only on the number of draws). */
#include "caffegrid/rng.h"

#include <immintrin.h>
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

/* The generator and [0, 1) conversion as static inline functions: the library is
 * built -fPIC, where gcc will not inline the exported ones into the fill loops. */
static inline uint64_t next_bits(cg_rng *r) {
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

static inline double to_unit(uint64_t bits) { return (double)(bits >> 11) * 0x1.0p-53; }

static inline double unit(cg_rng *r) { return to_unit(next_bits(r)); }

uint64_t cg_rng_next(cg_rng *r) { return next_bits(r); }

double cg_rng_uniform01(cg_rng *r) { return unit(r); }

/* u in [0, 1) scaled to [lo, hi): rounding to float must not reach hi */
static inline float in_range(double u, float lo, float hi) {
  float v = (float)(lo + (hi - lo) * u);
  return v < hi ? v : lo;
}

float cg_rng_uniform(cg_rng *r, float lo, float hi) { return in_range(unit(r), lo, hi); }

void cg_rng_uniform_fill(cg_rng *r, float lo, float hi, float *out, size_t n) {
  enum { BLOCK = 256 };
  uint64_t bits[BLOCK];
  for (size_t done = 0; done < n; done += BLOCK) {
    size_t m = n - done < BLOCK ? n - done : BLOCK;
    for (size_t j = 0; j < m; j++) bits[j] = next_bits(r); /* the serial part, kept tight */
    for (size_t j = 0; j < m; j++) out[done + j] = in_range(to_unit(bits[j]), lo, hi);
  }
}

/* u1 (kept above 1e-300, so its log is finite) and u2 for m outputs: the serial part */
static void draw_pairs(cg_rng *r, double *u1, double *u2, size_t m) {
  for (size_t j = 0; j < m; j++) {
    u1[j] = unit(r), u2[j] = unit(r);
    if (u1[j] < 1e-300) u1[j] = 1e-300;
  }
}

float cg_rng_gaussian(cg_rng *r, float mean, float std) {
  double u1, u2;
  draw_pairs(r, &u1, &u2, 1);
  double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
  return (float)(mean + std * z);
}

/* glibc's libmvec: 4 doubles at a time, AVX2 */
__attribute__((target("avx2"))) __m256d _ZGVdN4v_log(__m256d x);
__attribute__((target("avx2"))) __m256d _ZGVdN4v_cos(__m256d x);

__attribute__((target("avx2,fma"))) static void box_muller4(const double *u1, const double *u2, double mean,
                                                             double std, float *out) {
  __m256d l = _ZGVdN4v_log(_mm256_loadu_pd(u1));
  __m256d c = _ZGVdN4v_cos(_mm256_mul_pd(_mm256_set1_pd(2.0 * M_PI), _mm256_loadu_pd(u2)));
  __m256d z = _mm256_mul_pd(_mm256_sqrt_pd(_mm256_mul_pd(_mm256_set1_pd(-2.0), l)), c);
  /* mean + std * z, rounded once to float, as cg_rng_gaussian */
  __m256d v = _mm256_add_pd(_mm256_set1_pd(mean), _mm256_mul_pd(_mm256_set1_pd(std), z));
  _mm_storeu_ps(out, _mm256_cvtpd_ps(v));
}

/* one output at a time through libm, for CPUs without AVX2 and FMA (the default build
 * runs on any x86-64); the vector path may differ from it in the last bit */
static void transform_scalar(const double *u1, const double *u2, double mean, double std, float *out, size_t m) {
  for (size_t j = 0; j < m; j++) out[j] = (float)(mean + std * (sqrt(-2.0 * log(u1[j])) * cos(2.0 * M_PI * u2[j])));
}

static void transform(const double *u1, const double *u2, double mean, double std, float *out, size_t m) {
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    transform_scalar(u1, u2, mean, std, out, m);
    return;
  }
  size_t j = 0;
  for (; j + 4 <= m; j += 4) box_muller4(u1 + j, u2 + j, mean, std, out + j);
  if (j == m) return;
  double t1[4] = {1.0, 1.0, 1.0, 1.0}, t2[4] = {0.0, 0.0, 0.0, 0.0}; /* padding, not drawn */
  float tail[4];
  for (size_t k = j; k < m; k++) t1[k - j] = u1[k], t2[k - j] = u2[k];
  box_muller4(t1, t2, mean, std, tail);
  for (size_t k = j; k < m; k++) out[k] = tail[k - j];
}

void cg_rng_gaussian_fill(cg_rng *r, float mean, float std, float *out, size_t n) {
  enum { BLOCK = 256 };
  double u1[BLOCK], u2[BLOCK];
  for (size_t done = 0; done < n; done += BLOCK) {
    size_t m = n - done < BLOCK ? n - done : BLOCK;
    draw_pairs(r, u1, u2, m);
    transform(u1, u2, mean, std, out + done, m);
  }
}

uint64_t cg_rng_below(cg_rng *r, uint64_t n) {
  if (n == 0) return 0;
  uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* rejection removes modulo bias */
  uint64_t x;
  do x = cg_rng_next(r);
  while (x >= limit);
  return x % n;
}
