/* The backends built in, and which one a net gets. Today one, "cpu", in the four
 * combinations of its kernel choices; a GPU backend is one more entry in `backends`. */
#include "math/backend.h"

#include <string.h>

#include "caffegrid/error.h"

static const cg_conv_kernel_ops *const cpu_fast_conv[] = {&cg_conv_kernel_single, &cg_conv_kernel_onednn, NULL};
static const cg_conv_kernel_ops *const reference_conv[] = {NULL};

/* [fast conv][openblas gemm] */
static const cg_backend cpu_tables[2][2] = {
    {{"cpu", cg_cpu_gemm_onednn, reference_conv}, {"cpu", cg_cpu_gemm_openblas, reference_conv}},
    {{"cpu", cg_cpu_gemm_onednn, cpu_fast_conv}, {"cpu", cg_cpu_gemm_openblas, cpu_fast_conv}},
};

static const cg_backend *cpu_select(const cg_backend_options *o);

static const struct {
  const char *name;
  const cg_backend *(*select)(const cg_backend_options *o);
} backends[] = {{"cpu", cpu_select}};
enum { NUM_BACKENDS = sizeof backends / sizeof backends[0] };

/* The process-wide defaults (cg_runtime_use_fast_conv, cg_runtime_use_openblas_gemm). */
static bool default_fast_conv = true, default_openblas_gemm = false;

void cg_runtime_use_fast_conv(bool on) { default_fast_conv = on; }
void cg_runtime_use_openblas_gemm(bool on) { default_openblas_gemm = on; }

static const cg_backend *cpu_select(const cg_backend_options *o) {
  bool fast = o->conv == CG_CONV_DEFAULT ? default_fast_conv : o->conv == CG_CONV_FAST;
  bool openblas = o->gemm == CG_GEMM_DEFAULT ? default_openblas_gemm : o->gemm == CG_GEMM_OPENBLAS;
  return &cpu_tables[fast][openblas];
}

const char *const *cg_backend_names(void) {
  static const char *const names[NUM_BACKENDS + 1] = {"cpu", NULL};
  return names;
}

int cg_backend_select(const cg_backend_options *options, const cg_backend **out) {
  static const cg_backend_options defaults = {0};
  const cg_backend_options *o = options ? options : &defaults;
  const char *name = o->name && o->name[0] ? o->name : "cpu";
  if ((unsigned)o->conv > CG_CONV_GEMM || (unsigned)o->gemm > CG_GEMM_OPENBLAS)
    return cg_error(CG_ERR_INVALID, "backend options: conv %d, gemm %d (unknown kernel choice)", (int)o->conv,
                    (int)o->gemm);
  for (int i = 0; i < NUM_BACKENDS; i++)
    if (strcmp(backends[i].name, name) == 0) {
      *out = backends[i].select(o);
      return CG_OK;
    }
  return cg_error(CG_ERR_INVALID, "unknown backend '%s' (this caffegrid has: cpu)", name);
}

const cg_backend *cg_backend_default(void) {
  static const cg_backend_options defaults = {0};
  return cpu_select(&defaults);
}

void cg_backend_gemm_ld(const cg_backend *b, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  b->gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cg_backend_gemm(const cg_backend *b, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                     const float *B, float beta, float *C) {
  int lda = trans_a ? M : K, ldb = trans_b ? K : N;
  cg_backend_gemm_ld(b, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
}
