/* Fillers: each distribution's shape checked on a large blob (mean, spread,
 * bounds), and the deterministic ones (constant, bilinear, positive_unitball) exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "caffegrid/error.h"
#include "core/filler.h"
#include "caffegrid/rng.h"

static cg_blob *blob4(int n, int c, int h, int w) {
  cg_blob *b = cg_blob_create("w");
  cg_blob_reshape4(b, n, c, h, w);
  return b;
}

static void moments(const cg_blob *b, double *mean, double *std, float *lo, float *hi) {
  double s = 0, ss = 0;
  *lo = INFINITY, *hi = -INFINITY;
  for (size_t i = 0; i < b->count; i++) {
    s += b->data[i], ss += (double)b->data[i] * b->data[i];
    if (b->data[i] < *lo) *lo = b->data[i];
    if (b->data[i] > *hi) *hi = b->data[i];
  }
  *mean = s / b->count;
  *std = sqrt(ss / b->count - *mean * *mean);
}

/* The batched gaussian draws what n scalar calls draw: same stream position after,
 * the same floats but for rare last-bit roundings of the vector log/cos. */
static void test_gaussian_fill_matches_scalar(void) {
  enum { N = 100003 }; /* not a multiple of the block or of 4 */
  float *batch = malloc(N * sizeof *batch), *scalar = malloc(N * sizeof *scalar);
  cg_rng a, b;
  cg_rng_seed(&a, 1701);
  cg_rng_seed(&b, 1701);
  cg_rng_gaussian_fill(&a, 0.5f, 3.0f, batch, N);
  for (int i = 0; i < N; i++) scalar[i] = cg_rng_gaussian(&b, 0.5f, 3.0f);
  int differ = 0;
  float worst = 0;
  for (int i = 0; i < N; i++) {
    if (batch[i] == scalar[i]) continue;
    differ++;
    float ulp = nextafterf(fabsf(scalar[i]), INFINITY) - fabsf(scalar[i]);
    worst = fmaxf(worst, fabsf(batch[i] - scalar[i]) / ulp);
  }
  CHECK_MSG(differ <= N / 1000, "%d of %d batched gaussians differ from the scalar ones", differ, N);
  CHECK_MSG(worst <= 1.0f, "a batched gaussian is %g ulp from the scalar one", worst);
  CHECK(cg_rng_next(&a) == cg_rng_next(&b));
  free(batch), free(scalar);
}

/* The batched uniform draws exactly what n scalar calls draw, bit for bit, and leaves
 * the stream at the same place; a range whose rounding can reach hi stays below it. */
static void test_uniform_fill_matches_scalar(void) {
  enum { N = 100003 };
  float *batch = malloc(N * sizeof *batch), *scalar = malloc(N * sizeof *scalar);
  const float ranges[][2] = {{-0.25f, 0.75f}, {0.0f, 1.0f}, {1.0f, 1.0000001f}};
  for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
    cg_rng a, b;
    cg_rng_seed(&a, 1701 + k);
    cg_rng_seed(&b, 1701 + k);
    cg_rng_uniform_fill(&a, ranges[k][0], ranges[k][1], batch, N);
    for (int i = 0; i < N; i++) scalar[i] = cg_rng_uniform(&b, ranges[k][0], ranges[k][1]);
    CHECK_MSG(memcmp(batch, scalar, N * sizeof(float)) == 0, "range %zu: batched uniforms differ from scalar ones", k);
    int outside = 0;
    for (int i = 0; i < N; i++) outside += !(batch[i] >= ranges[k][0] && batch[i] < ranges[k][1]);
    CHECK_MSG(outside == 0, "range %zu: %d uniforms outside [lo, hi)", k, outside);
    CHECK(cg_rng_next(&a) == cg_rng_next(&b));
  }
  free(batch), free(scalar);
}

int main(void) {
  test_gaussian_fill_matches_scalar();
  test_uniform_fill_matches_scalar();
  cg_rng rng;
  cg_rng_seed(&rng, 42);
  double mean, std;
  float lo, hi;
  cg_blob *b = blob4(100, 50, 5, 5); /* fan_in 1250, fan_out 2500 */

  cg_filler f = cg_filler_constant(0.25f);
  cg_filler_fill(&f, b, &rng);
  moments(b, &mean, &std, &lo, &hi);
  CHECK(lo == 0.25f && hi == 0.25f);

  f = (cg_filler){.type = CG_FILLER_UNIFORM, .min = -2, .max = 3, .sparse = -1};
  cg_filler_fill(&f, b, &rng);
  moments(b, &mean, &std, &lo, &hi);
  CHECK(lo >= -2 && hi < 3);
  CHECK_NEAR(mean, 0.5, 0.03);
  CHECK_NEAR(std, 5 / sqrt(12), 0.02);

  f = (cg_filler){.type = CG_FILLER_GAUSSIAN, .mean = 1, .std = 0.5f, .sparse = -1};
  cg_filler_fill(&f, b, &rng);
  moments(b, &mean, &std, &lo, &hi);
  CHECK_NEAR(mean, 1, 0.01);
  CHECK_NEAR(std, 0.5, 0.01);

  /* sparse gaussian: each weight survives with probability sparse / num_outputs */
  f = (cg_filler){.type = CG_FILLER_GAUSSIAN, .std = 1, .sparse = 20};
  cg_filler_fill(&f, b, &rng);
  size_t nonzero = 0;
  for (size_t i = 0; i < b->count; i++) nonzero += b->data[i] != 0;
  CHECK_NEAR((double)nonzero / b->count, 20.0 / 100, 0.01);

  f = (cg_filler){.type = CG_FILLER_XAVIER, .sparse = -1};
  cg_filler_fill(&f, b, &rng);
  moments(b, &mean, &std, &lo, &hi);
  float bound = sqrtf(3.0f / 1250);
  CHECK(lo >= -bound && hi <= bound);
  CHECK_NEAR(std, bound / sqrt(3), 0.002);

  f = (cg_filler){.type = CG_FILLER_XAVIER, .sparse = -1, .variance_norm = CAFFE__FILLER_PARAMETER__VARIANCE_NORM__FAN_OUT};
  cg_filler_fill(&f, b, &rng);
  moments(b, &mean, &std, &lo, &hi);
  CHECK(hi <= sqrtf(3.0f / 2500));

  f = (cg_filler){.type = CG_FILLER_MSRA, .sparse = -1, .variance_norm = CAFFE__FILLER_PARAMETER__VARIANCE_NORM__AVERAGE};
  cg_filler_fill(&f, b, &rng);
  moments(b, &mean, &std, &lo, &hi);
  CHECK_NEAR(std, sqrt(2.0 / 1875), 0.001);
  CHECK_NEAR(mean, 0, 0.001);

  f = (cg_filler){.type = CG_FILLER_POSITIVE_UNITBALL, .sparse = -1};
  cg_filler_fill(&f, b, &rng);
  for (int r = 0; r < 100; r++) {
    double row = 0;
    for (int j = 0; j < 1250; j++) row += b->data[r * 1250 + j];
    CHECK_NEAR(row, 1, 1e-4);
  }

  /* bilinear 4x4 kernel: factor 2, centre 0.75 -> weights (1 - |x/2 - 0.75|)(1 - |y/2 - 0.75|) */
  cg_blob *k = blob4(1, 1, 4, 4);
  f = (cg_filler){.type = CG_FILLER_BILINEAR, .sparse = -1};
  CHECK_EQ_INT(cg_filler_fill(&f, k, &rng), 0);
  const float axis[4] = {0.25f, 0.75f, 0.75f, 0.25f};
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++) CHECK_NEAR(k->data[y * 4 + x], axis[y] * axis[x], 1e-6);
  cg_blob *not_square = blob4(1, 1, 3, 4);
  CHECK(cg_filler_fill(&f, not_square, &rng) != 0);

  Caffe__FillerParameter fp = CAFFE__FILLER_PARAMETER__INIT;
  fp.type = "gausian";
  CHECK(cg_filler_from_param(&fp, &f) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "unknown filler type 'gausian'");
  cg_blob_free(b);
  cg_blob_free(k);
  cg_blob_free(not_square);
  return CHECK_REPORT();
}
