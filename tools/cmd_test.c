/* caffegrid test: score a trained model over N batches, printing what `caffe test` prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "caffegrid/net.h"
#include "commands.h"
#include "flags.h"

int cmd_test(int argc, char **argv) {
  cg_flag flags[] = {
      {"model", NULL, false, "the net prototxt"},
      {"weights", NULL, false, "the trained .caffemodel"},
      {"iterations", NULL, false, "number of batches (default 50)"},
      {"phase", NULL, false, "TRAIN or TEST (default TEST)"},
      {"level", NULL, false, "NetState level (default 0)"},
      {"stage", NULL, false, "comma-separated NetState stages"},
      {"gpu", NULL, false, "not available in this build: CPU only"},
      {"help", NULL, true, "this help"},
      {NULL, NULL, false, NULL},
  };
  char *positional[64];
  int np = 0;
  if (argc > 64 || cg_flags_parse(argc, argv, flags, positional, &np, "test")) return 1;
  if (cg_flag_get(flags, "help")) {
    cg_flags_usage(flags, "test", "-model NET -weights W [-iterations N]");
    return 0;
  }
  const char *model = cg_flag_get(flags, "model"), *weights = cg_flag_get(flags, "weights");
  long iterations, level;
  if (!cg_flag_int(flags, "iterations", 50, &iterations) || !cg_flag_int(flags, "level", 0, &level)) return 1;
  if (!model) {
    fprintf(stderr, "caffegrid test: -model is required\n");
    return 1;
  }
  if (iterations <= 0) {
    fprintf(stderr, "caffegrid test: -iterations must be positive\n");
    return 1;
  }
  if (cg_flag_get(flags, "gpu")) {
    fprintf(stderr, "caffegrid test: -gpu was given but this build has no GPU support; run without -gpu for the CPU\n");
    return 1;
  }
  const char *phase = cg_flag_get(flags, "phase");
  cg_net_options opt = {.phase = 1, .level = (int)level, .world_size = 1};
  if (phase && strcmp(phase, "TRAIN") == 0) opt.phase = 0;
  else if (phase && strcmp(phase, "TEST") != 0) {
    fprintf(stderr, "caffegrid test: -phase must be TRAIN or TEST, got '%s'\n", phase);
    return 1;
  }
  char *stage_copy = NULL;
  const char *stages[32];
  if (cg_flag_get(flags, "stage")) {
    stage_copy = strdup(cg_flag_get(flags, "stage"));
    for (char *save, *s = strtok_r(stage_copy, ",", &save); s && opt.num_stages < 32; s = strtok_r(NULL, ",", &save))
      stages[opt.num_stages++] = s;
    opt.stages = stages;
  }
  CG_LOG_INFO("Use CPU.");
  cg_net *net = NULL;
  int rc = cg_net_create_from_file(model, &opt, &net);
  free(stage_copy);
  if (!rc && weights) rc = cg_net_load_weights(net, weights);
  if (rc) {
    fprintf(stderr, "caffegrid test: %s\n", cg_error_message());
    cg_net_free(net);
    return 1;
  }
  CG_LOG_INFO("Running for %ld iterations.", iterations);
  int num_outputs = cg_net_num_outputs(net);
  size_t total = 0;
  for (int j = 0; j < num_outputs; j++) total += cg_net_output(net, j)->count;
  double *scores = calloc(total + 1, sizeof(double));
  double loss = 0;
  for (long it = 0; it < iterations && !rc; it++) {
    float iter_loss;
    rc = cg_net_forward(net, &iter_loss);
    if (rc) break;
    loss += iter_loss;
    size_t idx = 0;
    for (int j = 0; j < num_outputs; j++) {
      cg_blob *b = cg_net_output(net, j);
      for (size_t k = 0; k < b->count; k++, idx++) {
        scores[idx] += b->data[k];
        CG_LOG_INFO("Batch %ld, %s = %g", it, b->name, b->data[k]);
      }
    }
  }
  if (rc) {
    fprintf(stderr, "caffegrid test: %s\n", cg_error_message());
  } else {
    loss /= (double)iterations;
    CG_LOG_INFO("Loss: %g", loss);
    size_t idx = 0;
    for (int j = 0; j < num_outputs; j++) {
      cg_blob *b = cg_net_output(net, j);
      float weight = cg_net_output_loss_weight(net, j);
      for (size_t k = 0; k < b->count; k++, idx++) {
        double mean = scores[idx] / (double)iterations;
        if (weight != 0)
          CG_LOG_INFO("%s = %g (* %g = %g loss)", b->name, mean, weight, weight * mean);
        else
          CG_LOG_INFO("%s = %g", b->name, mean);
      }
    }
  }
  free(scores);
  cg_net_free(net);
  return rc ? 1 : 0;
}
