/* caffegrid time: per-layer and total forward/backward timings, printed as `caffe time` prints them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "caffegrid/net.h"
#include "caffegrid/environment.h"
#include "commands.h"
#include "cli_context.h"
#include "flags.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int cmd_time(int argc, char **argv) {
  cg_flag flags[] = {
      {"model", NULL, false, "the net prototxt"},
      {"iterations", NULL, false, "number of timed iterations (default 50)"},
      {"phase", NULL, false, "TRAIN or TEST (default TRAIN)"},
      {"weights", NULL, false, "optional .caffemodel"},
      {"gpu", NULL, false, "not available in this build: CPU only"},
      {"help", NULL, true, "this help"},
      {NULL, NULL, false, NULL},
  };
  char *positional[64];
  int np = 0;
  if (argc > 64 || cg_flags_parse(argc, argv, flags, positional, &np, "time")) return 1;
  if (cg_flag_get(flags, "help")) {
    cg_flags_usage(flags, "time", "-model NET [-iterations N]");
    return 0;
  }
  const char *model = cg_flag_get(flags, "model");
  long iterations;
  if (!cg_flag_int(flags, "iterations", 50, &iterations)) return 1;
  if (!model || iterations <= 0) {
    fprintf(stderr, "caffegrid time: -model NET is required and -iterations must be positive\n");
    return 1;
  }
  cg_cli_context ctx;
  if (!cg_cli_begin(flags, "time", 0, false, &ctx)) return 1;
  cg_net_options opt = ctx.net;
  opt.seed = 1701;
  cg_net *net = NULL;
  int rc = cg_net_create_from_file(model, &opt, &net);
  if (!rc && cg_flag_get(flags, "weights")) rc = cg_net_load_weights(net, cg_flag_get(flags, "weights"));
  if (rc) {
    fprintf(stderr, "caffegrid time: %s\n", cg_error_message());
    cg_net_free(net);
    return 1;
  }
  /* one untimed pass, as Caffe does, so buffers are allocated */
  CG_LOG_INFO("Performing Forward");
  float loss;
  rc = cg_net_forward(net, &loss);
  if (!rc) {
    CG_LOG_INFO("Initial loss: %g", loss);
    CG_LOG_INFO("Performing Backward");
    cg_net_backward(net);
  }
  CG_LOG_INFO("*** Benchmark begins ***");
  CG_LOG_INFO("Testing for %ld iterations.", iterations);
  cg_net_set_profiling(net, true);
  double total_start = now_ms();
  for (long it = 0; it < iterations && !rc; it++) {
    double start = now_ms();
    rc = cg_net_forward(net, &loss);
    if (rc) break;
    cg_net_backward(net);
    CG_LOG_INFO("Iteration: %ld forward-backward time: %.4g ms.", it + 1, now_ms() - start);
  }
  double total = now_ms() - total_start;
  if (rc) {
    fprintf(stderr, "caffegrid time: %s\n", cg_error_message());
    cg_net_free(net);
    return 1;
  }
  CG_LOG_INFO("Average time per layer: ");
  double fwd = 0, bwd = 0;
  for (int i = 0; i < cg_net_num_layers(net); i++) {
    double f, b;
    cg_net_layer_times(net, i, &f, &b);
    fwd += f, bwd += b;
    CG_LOG_INFO("%10s\tforward: %.5g ms.", cg_net_layer_name(net, i), f / iterations);
    CG_LOG_INFO("%10s\tbackward: %.5g ms.", cg_net_layer_name(net, i), b / iterations);
  }
  CG_LOG_INFO("Average Forward pass: %.5g ms.", fwd / iterations);
  CG_LOG_INFO("Average Backward pass: %.5g ms.", bwd / iterations);
  CG_LOG_INFO("Average Forward-Backward: %.5g ms.", total / iterations);
  CG_LOG_INFO("Total Time: %.5g ms.", total);
  CG_LOG_INFO("*** Benchmark ends ***");
  cg_net_free(net);
  return 0;
}
