/* caffegrid's side of bench/cpu_speed.py: times forward+backward and full SGD
 * training iterations of one net, and prints one JSON line (per-iteration times
 * in ms, peak resident memory). Threads: OPENBLAS_NUM_THREADS, as for the CLI.
 *   build/bench/cpu_speed NET.prototxt ITERATIONS WARMUP */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "caffegrid/net.h"
#include "caffegrid/solver.h"
#include "caffegrid/runtime.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void print_list(const char *name, const double *v, int n) {
  printf("\"%s\": [", name);
  for (int i = 0; i < n; i++) printf("%s%.4f", i ? ", " : "", v[i]);
  printf("]");
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s NET.prototxt ITERATIONS WARMUP\n", argv[0]);
    return 2;
  }
  /* the CLI's thread policy (tools/caffegrid.c) */
  if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(cg_math_threads());
  int iters = atoi(argv[2]), warmup = atoi(argv[3]);
  if (iters <= 0 || warmup < 0) return 2;
  char solver_path[] = "/tmp/cg_cpu_speed_XXXXXX";
  int fd = mkstemp(solver_path);
  if (fd < 0) return 1;
  char *net_path = realpath(argv[1], NULL);
  FILE *f = fdopen(fd, "w");
  if (!f || !net_path) return 1;
  /* Caffe's ImageNet/LeNet recipe: SGD with momentum and weight decay */
  fprintf(f, "net: \"%s\"\nbase_lr: 0.001\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: \"fixed\"\n"
             "max_iter: 100000000\ndisplay: 0\nsnapshot: 0\nsnapshot_after_train: false\n", net_path);
  fclose(f);
  free(net_path);
  cg_solver_options opt = {.world_size = 1, .no_metrics = true};
  cg_solver *s = NULL;
  int rc = cg_solver_create_from_file(solver_path, &opt, &s);
  unlink(solver_path);
  if (rc) {
    fprintf(stderr, "cpu_speed: %s\n", cg_error_message());
    return 1;
  }
  cg_net *net = cg_solver_net(s);
  float loss;
  for (int i = 0; i < warmup && !rc; i++) {
    rc = cg_net_forward(net, &loss);
    if (!rc) cg_net_backward(net);
    if (!rc) rc = cg_solver_step(s, 1);
  }
  double *fb = calloc(iters, sizeof *fb), *train = calloc(iters, sizeof *train);
  /* forward+backward and training iterations alternate, so both see the same machine load */
  for (int i = 0; i < iters && !rc; i++) {
    double t0 = now_ms();
    rc = cg_net_forward(net, &loss);
    if (rc) break;
    cg_net_backward(net);
    double t1 = now_ms();
    rc = cg_solver_step(s, 1);
    train[i] = now_ms() - t1;
    fb[i] = t1 - t0;
  }
  if (rc) {
    fprintf(stderr, "cpu_speed: %s\n", cg_error_message());
    return 1;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{");
  print_list("fb_ms", fb, iters);
  printf(", ");
  print_list("train_ms", train, iters);
  printf(", \"maxrss_kb\": %ld, \"loss\": %g}\n", ru.ru_maxrss, loss);
  free(fb);
  free(train);
  cg_solver_free(s);
  return 0;
}
