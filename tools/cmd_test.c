/* caffegrid test: score a trained model over N batches, printing what `caffe test`
 * prints; under MPI every rank scores its own share and the means are combined.
 * CaffeOnSpark's form: caffegrid -test -conf SOLVER -model W [-output FILE]. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffegrid/atomic_file.h"
#include "caffegrid/comm.h"
#include "caffegrid/error.h"
#include "caffegrid/feed.h"
#include "caffegrid/log.h"
#include "caffegrid/net.h"
#include "caffegrid/solver.h"
#include "caffegrid/environment.h"
#include "commands.h"
#include "cli_context.h"
#include "flags.h"

/* CaffeOnSpark's -output: one "name: value" line per output, written atomically. */
static int write_results(const char *path, bool overwrite, char **names, const double *values, size_t n) {
  struct stat st;
  if (!overwrite && stat(path, &st) == 0)
    return cg_error(CG_ERR_IO, "'%s' already exists; give -overwrite to replace it", path);
  cg_atomic_file *f;
  int rc = cg_atomic_file_open(path, &f);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) fprintf(cg_atomic_file_stream(f), "%s: %.9g\n", names[i], values[i]);
  return cg_atomic_file_commit(f);
}

/* Caffe's "Batch N, name = value" lines, after each pass; the first batch with NaN
 * or infinite values anywhere in the net is named (an accuracy can look fine on NaN
 * scores). */
static void log_batch(cg_net *net, int iteration, void *user) {
  bool *warned = user;
  char what[512];
  int layer = *warned ? -1 : cg_net_first_nonfinite(net, false, what, sizeof what);
  if (layer >= 0) {
    *warned = true;
    CG_LOG_WARN("Batch %d: layer '%s' (%s): %s holds NaN or infinite values (NaN input data or diverged weights?): "
                "the scores are meaningless", iteration, cg_net_layer_name(net, layer), cg_net_layer_type(net, layer),
                what);
  }
  for (int j = 0; j < cg_net_num_outputs(net); j++) {
    const cg_blob *b = cg_net_output(net, j);
    for (size_t k = 0; k < b->count; k++) CG_LOG_INFO("Batch %d, %s = %g", iteration, b->name, b->data[k]);
  }
}

int cmd_test(int argc, char **argv) {
  cg_flag flags[] = {
      {"model", NULL, false, "the net prototxt"},
      {"weights", NULL, false, "the trained .caffemodel"},
      {"iterations", NULL, false, "number of batches (default 50)"},
      {"phase", NULL, false, "TRAIN or TEST (default TEST)"},
      {"level", NULL, false, "NetState level (default 0)"},
      {"stage", NULL, false, "comma-separated NetState stages"},
      {"conf", NULL, false, "CaffeOnSpark: a solver file naming the net (its test_iter is the default -iterations)"},
      {"output", NULL, false, "also write 'name: value' per output to this file (CaffeOnSpark)"},
      {"overwrite", NULL, true, "replace an existing -output file"},
      {"test", NULL, true, "CaffeOnSpark's mode flag (accepted)"},
      {"peer_timeout", NULL, false, "seconds a collective waits for a silent rank before the job ends (default 300)"},
      {"gpu", NULL, false, "not available in this build: CPU only"},
      {"help", NULL, true, "this help"},
      {NULL, NULL, false, NULL},
  };
  char *positional[64];
  int np = 0;
  if (argc > 64 || cg_flags_parse(argc, argv, flags, positional, &np, "test")) return 1;
  /* CaffeOnSpark: -conf gives the net, -model gives the weights */
  char *conf_net = NULL;
  long conf_iter = 50;
  if (cg_flag_get(flags, "conf")) {
    if (cg_solver_file_net(cg_flag_get(flags, "conf"), 1, &conf_net, &conf_iter)) {
      fprintf(stderr, "caffegrid test: %s\n", cg_error_message());
      return 1;
    }
    const char *trained = cg_flag_get(flags, "model");
    for (cg_flag *f = flags; f->name; f++) {
      if (strcmp(f->name, "weights") == 0 && !f->value) f->value = trained;
      if (strcmp(f->name, "model") == 0) f->value = conf_net;
    }
  }
  if (cg_flag_get(flags, "help")) {
    cg_flags_usage(flags, "test", "-model NET -weights W [-iterations N]");
    return 0;
  }
  const char *model = cg_flag_get(flags, "model"), *weights = cg_flag_get(flags, "weights");
  long iterations, level;
  if (!cg_flag_int(flags, "iterations", conf_iter, &iterations) || !cg_flag_int(flags, "level", 0, &level)) return 1;
  if (!model) {
    fprintf(stderr, "caffegrid test: -model is required\n");
    return 1;
  }
  if (iterations <= 0 || iterations > INT_MAX) {
    fprintf(stderr, "caffegrid test: -iterations must be positive and at most %d\n", INT_MAX);
    return 1;
  }
  cg_cli_context ctx;
  if (!cg_cli_begin(flags, "test", 1, true, &ctx)) {
    free(conf_net);
    return 1;
  }
  cg_comm *comm = ctx.comm;
  cg_net_options opt = ctx.net;
  opt.level = (int)level;
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
  if (!rc) rc = cg_net_feed_own_sources(net, NULL); /* CaffeOnSpark's nets: MemoryData layers name their data */
  size_t nonfinite = !rc && weights ? cg_net_nonfinite_params(net) : 0;
  if (nonfinite)
    CG_LOG_WARN("%s: %zu weight values are NaN or infinite (weights of a diverged training?): the scores will be "
                "meaningless", weights, nonfinite);
  if (rc) {
    fprintf(stderr, "caffegrid test: %s\n", cg_error_message());
    cg_net_free(net);
    cg_cli_end(&ctx);
    free(conf_net);
    return 1;
  }
  CG_LOG_INFO("Running for %ld iterations.", iterations);
  int num_outputs = cg_net_num_outputs(net);
  size_t total = cg_net_num_output_values(net);
  /* every rank scores its own share; the means are combined (equal batch counts per rank) */
  double *means = calloc(total + 1, sizeof(double)), loss = 0;
  bool warned = nonfinite > 0;
  rc = means ? cg_net_score(net, (int)iterations, comm, means, &loss, log_batch, &warned)
             : cg_error(CG_ERR_NOMEM, "out of memory");
  char **names = calloc(total + 1, sizeof(char *));
  double *values = calloc(total + 1, sizeof(double));
  if (rc) {
    char message[4200];
    snprintf(message, sizeof message, "caffegrid test: %s", cg_error_message());
    if (opt.world_size > 1) cg_comm_abort(comm, 1, message);
    fprintf(stderr, "%s\n", message);
  } else {
    if (opt.world_size > 1) CG_LOG_INFO("Scores combined over %d ranks", opt.world_size);
    CG_LOG_INFO("Loss: %g", (float)loss); /* printed as floats, as the ranks exchange them */
    size_t idx = 0;
    for (int j = 0; j < num_outputs; j++) {
      cg_blob *b = cg_net_output(net, j);
      float weight = cg_net_output_loss_weight(net, j);
      for (size_t k = 0; k < b->count; k++, idx++) {
        double mean = (float)means[idx];
        names[idx] = b->name, values[idx] = mean;
        if (weight != 0)
          CG_LOG_INFO("%s = %g (* %g = %g loss)", b->name, mean, weight, weight * mean);
        else
          CG_LOG_INFO("%s = %g", b->name, mean);
      }
    }
    const char *output = cg_flag_get(flags, "output");
    if (output && opt.rank == 0) {
      rc = write_results(output, cg_flag_get(flags, "overwrite") != NULL, names, values, total);
      if (rc) fprintf(stderr, "caffegrid test: %s\n", cg_error_message());
    }
  }
  free(names);
  free(values);
  free(means);
  free(conf_net);
  cg_net_free(net);
  cg_cli_end(&ctx);
  return rc ? 1 : 0;
}
