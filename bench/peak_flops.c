/* Measured fp32 peak of this machine: independent fused multiply-adds on the widest
 * vectors the CPU has (AVX-512 or AVX2), on 1..N threads at once. bench/cpu_speed.py
 * reports each net's achieved GFLOP/s as a fraction of this, for the same thread count.
 *   build/bench/peak_flops [MAX_THREADS]   -> one JSON line: {"1": GFLOP/s, "2": ...} */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { CHAINS = 12, REPS = 100 * 1000 * 1000 }; /* 12 chains hide the 4-cycle FMA latency on 2 ports */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Each returns the flops done; `seed` keeps the compiler from folding the loop. */
__attribute__((target("avx512f"))) static double fma512(float seed) {
  __m512 acc[CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(seed * 1e-7f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps(seed + i);
  for (long r = 0; r < REPS; r++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  float sink = 0;
  for (int i = 0; i < CHAINS; i++) sink += _mm512_reduce_add_ps(acc[i]);
  if (sink == 12345.0f) puts(""); /* never: uses the result */
  return 2.0 * 16 * CHAINS * (double)REPS;
}

__attribute__((target("avx2,fma"))) static double fma256(float seed) {
  __m256 acc[CHAINS], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(seed * 1e-7f);
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps(seed + i);
  for (long r = 0; r < REPS; r++)
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float out[8], sink = 0;
  for (int i = 0; i < CHAINS; i++) {
    _mm256_storeu_ps(out, acc[i]);
    for (int j = 0; j < 8; j++) sink += out[j];
  }
  if (sink == 12345.0f) puts("");
  return 2.0 * 8 * CHAINS * (double)REPS;
}

/* GFLOP/s of `threads` threads each running the kernel at once (best of 5). */
static double measure(int threads, int avx512) {
  double best = 0;
  for (int round = 0; round < 5; round++) {
    double flops = 0, start = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    flops += avx512 ? fma512(1.0f + omp_get_thread_num()) : fma256(1.0f + omp_get_thread_num());
    double rate = flops / (now_s() - start) / 1e9;
    if (rate > best) best = rate;
  }
  return best;
}

int main(int argc, char **argv) {
  int max_threads = argc > 1 ? atoi(argv[1]) : omp_get_num_procs();
  __builtin_cpu_init();
  int avx512 = __builtin_cpu_supports("avx512f");
  printf("{\"isa\": \"%s\"", avx512 ? "avx512" : "avx2");
  for (int t = 1; t <= max_threads; t++) printf(", \"%d\": %.1f", t, measure(t, avx512));
  printf("}\n");
  return 0;
}
