/* caffegrid features: run a trained net over a dataset once and write chosen
 * blobs per sample, Spark-style: OUT/part-00000 ... (one per rank, every sample
 * exactly once), then OUT/_SUCCESS when every part is complete.
 *   caffegrid features -model NET -weights W -features B1,B2 [-label L] -output OUT [-outputFormat json|csv|libsvm]
 *   caffegrid -features B1 -label L -conf SOLVER -model W -output OUT   (CaffeOnSpark's form) */
#include <dirent.h>
#include <errno.h>
#include <math.h>
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
#include "feature_writer.h"
#include "cli_context.h"
#include "flags.h"

enum { MAX_FEATURES = 64 };

/* An output directory "holds results" when it has _SUCCESS or part files. */
static int prepare_output(const char *dir, bool overwrite) {
  DIR *d = opendir(dir);
  if (!d) {
    if (errno != ENOENT) return cg_error(CG_ERR_IO, "cannot open output directory '%s': %s", dir, strerror(errno));
    if (mkdir(dir, 0755) != 0) return cg_error(CG_ERR_IO, "cannot create output directory '%s': %s", dir, strerror(errno));
    return CG_OK;
  }
  int rc = CG_OK;
  for (struct dirent *e; (e = readdir(d));) {
    bool result = strcmp(e->d_name, "_SUCCESS") == 0 || strncmp(e->d_name, "part-", 5) == 0;
    if (!result) continue;
    if (!overwrite) {
      rc = cg_error(CG_ERR_IO, "output directory '%s' already holds results (%s); give -overwrite to replace them", dir,
                    e->d_name);
      break;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (unlink(path) != 0) {
      rc = cg_error(CG_ERR_IO, "cannot remove old result '%s': %s", path, strerror(errno));
      break;
    }
  }
  closedir(d);
  return rc;
}

static int list_blobs_error(cg_net *net, const char *name) {
  char list[2048] = "";
  size_t used = 0;
  for (int i = 0; i < cg_net_num_blobs(net) && used < sizeof list - 64; i++) {
    const char *b = cg_net_blob_at(net, i)->name;
    if (strstr(b, "_split_")) continue; /* copies made by inserted Split layers */
    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", b);
  }
  return cg_error(CG_ERR_NOT_FOUND, "the net has no blob '%s' (its blobs: %s)", name, list);
}

/* Whether any of a row's feature values is NaN or infinite. */
static bool row_nonfinite(const float *const *values, const cg_feature_column *cols, int num) {
  for (int c = 0; c < num; c++)
    for (size_t k = 0; k < cols[c].width; k++)
      if (!isfinite(values[c][k])) return true;
  return false;
}

/* Extracts this rank's rows into its part file: one exact pass over its records
 * (ranks need no collective here, so shares of different sizes are fine). */
static int extract(cg_net *net, cg_comm *comm, char **names, int num, const char *label_name, cg_features_format format,
                   const char *dir, long *rows_out) {
  cg_blob *blobs[MAX_FEATURES], *label = NULL;
  for (int i = 0; i < num; i++)
    if (!(blobs[i] = cg_net_blob(net, names[i]))) return list_blobs_error(net, names[i]);
  if (label_name && !(label = cg_net_blob(net, label_name))) return list_blobs_error(net, label_name);
  double records = (double)cg_net_rank_records(net);
  if (records == 0) return cg_error(CG_ERR_INVALID, "the net has no data layer to read samples from");
  int rc = CG_OK, rank = cg_comm_rank(comm);
  char path[4096];
  snprintf(path, sizeof path, "%s/part-%05d", dir, rank);
  cg_atomic_file *out;
  rc = cg_atomic_file_open(path, &out);
  if (rc) return rc;
  FILE *f = cg_atomic_file_stream(out);
  cg_feature_column cols[MAX_FEATURES];
  const float *values[MAX_FEATURES];
  bool header_done = false;
  long rows = 0, nonfinite_rows = 0;
  while (rc == CG_OK && rows < (long)records) {
    rc = cg_net_forward(net, NULL);
    if (rc) break;
    int n = blobs[0]->num_axes ? blobs[0]->shape[0] : 1;
    const char *ids[4096];
    bool valid[4096];
    int got = cg_net_batch_ids(net, ids, valid, n < 4096 ? n : 4096);
    if (got < 0) {
      rc = got;
      break;
    }
    for (int c = 0; c < num; c++) {
      int rows_c = blobs[c]->num_axes ? blobs[c]->shape[0] : 1;
      if (rows_c != n) {
        rc = cg_error(CG_ERR_SHAPE, "blob '%s' has %d rows but blob '%s' has %d: features must share the batch axis",
                      names[c], rows_c, names[0], n);
        break;
      }
      cols[c] = (cg_feature_column){names[c], blobs[c]->count / (size_t)n};
    }
    if (rc) break;
    if (!header_done) cg_features_write_header(f, format, cols, num, label != NULL), header_done = true;
    for (int i = 0; i < n && i < got; i++) {
      if (!valid[i]) continue;
      for (int c = 0; c < num; c++) values[c] = blobs[c]->data + (size_t)i * cols[c].width;
      float lab = label ? label->data[(size_t)i * (label->count / (size_t)n)] : 0;
      char fallback[32];
      snprintf(fallback, sizeof fallback, "%ld", rows);
      if (row_nonfinite(values, cols, num) && nonfinite_rows++ == 0)
        CG_LOG_WARN("row '%s': its features hold NaN or infinite values (NaN input data or diverged weights?)",
                    got ? ids[i] : fallback);
      cg_features_write_row(f, format, got ? ids[i] : fallback, cols, values, num, label != NULL, lab);
      rows++;
    }
  }
  if (rc) {
    cg_atomic_file_abort(out);
    return rc;
  }
  if (nonfinite_rows)
    CG_LOG_WARN("%ld of the %ld rows written to %s hold NaN or infinite features", nonfinite_rows, rows, path);
  rc = cg_atomic_file_commit(out);
  *rows_out = rows;
  return rc;
}

int cmd_features(int argc, char **argv) {
  cg_flag flags[] = {
      {"model", NULL, false, "the net prototxt (with -conf: the trained .caffemodel)"},
      {"weights", NULL, false, "the trained .caffemodel"},
      {"conf", NULL, false, "CaffeOnSpark: a solver file naming the net"},
      {"features", NULL, false, "comma-separated blob names to extract"},
      {"label", NULL, false, "blob holding each sample's label"},
      {"output", NULL, false, "output directory (part-NNNNN per rank, then _SUCCESS)"},
      {"outputFormat", NULL, false, "json (default), csv or libsvm"},
      {"overwrite", NULL, true, "replace results already in the output directory"},
      {"devices", NULL, false, "CaffeOnSpark: devices per process (CPU build: must be 1)"},
      {"peer_timeout", NULL, false, "seconds a collective waits for a silent rank before the job ends (default 300)"},
      {"gpu", NULL, false, "not available in this build: CPU only"},
      {"help", NULL, true, "this help"},
      {NULL, NULL, false, NULL},
  };
  char *positional[64];
  int np = 0;
  if (argc > 64 || cg_flags_parse(argc, argv, flags, positional, &np, "features")) return 1;
  if (cg_flag_get(flags, "help")) {
    cg_flags_usage(flags, "features", "-model NET -weights W -features B1,B2 [-label L] -output DIR [-outputFormat json|csv|libsvm]");
    return 0;
  }
  const char *model = cg_flag_get(flags, "model"), *weights = cg_flag_get(flags, "weights");
  const char *features = cg_flag_get(flags, "features"), *output = cg_flag_get(flags, "output");
  const char *format_name = cg_flag_get(flags, "outputFormat");
  cg_features_format format = CG_FEATURES_JSON;
  if (format_name && !cg_features_format_parse(format_name, &format)) {
    fprintf(stderr, "caffegrid features: -outputFormat must be json, csv or libsvm, got '%s'\n", format_name);
    return 1;
  }
  char *conf_net = NULL;
  if (cg_flag_get(flags, "conf")) {
    long unused = 0;
    if (cg_solver_file_net(cg_flag_get(flags, "conf"), 1, &conf_net, &unused)) {
      fprintf(stderr, "caffegrid features: %s\n", cg_error_message());
      return 1;
    }
    if (!weights) weights = model;
    model = conf_net;
  }
  if (!model || !features || !output) {
    fprintf(stderr, "caffegrid features: -model, -features and -output are required (see -help)\n");
    free(conf_net);
    return 1;
  }
  char *list = strdup(features), *names[MAX_FEATURES];
  int num = 0;
  for (char *save, *s = strtok_r(list, ",", &save); s && num < MAX_FEATURES; s = strtok_r(NULL, ",", &save)) names[num++] = s;
  cg_cli_context ctx;
  if (!cg_cli_begin(flags, "features", 1, true, &ctx)) {
    free(list);
    free(conf_net);
    return 1;
  }
  cg_comm *comm = ctx.comm;
  int rank = ctx.net.rank, world = ctx.net.world_size;
  int rc = num ? CG_OK : cg_error(CG_ERR_INVALID, "-features names no blob");
  if (!rc && rank == 0) rc = prepare_output(output, cg_flag_get(flags, "overwrite") != NULL);
  double failed = rc ? 1 : 0; /* rank 0's verdict on the directory, shared */
  if (cg_comm_allreduce_max(comm, &failed, 1) == 0 && failed && !rc)
    rc = cg_error(CG_ERR_IO, "the output directory could not be prepared (see rank 0)");
  cg_net *net = NULL;
  cg_net_options opt = ctx.net;
  opt.exact_pass = true;
  if (!rc) rc = cg_net_create_from_file(model, &opt, &net);
  if (!rc && weights) rc = cg_net_load_weights(net, weights);
  if (!rc) rc = cg_net_feed_own_sources(net, NULL); /* CaffeOnSpark's nets: MemoryData layers name their data */
  long rows = 0;
  if (!rc) rc = extract(net, comm, names, num, cg_flag_get(flags, "label"), format, output, &rows);
  if (rc) {
    char message[4200];
    snprintf(message, sizeof message, "caffegrid features: %s", cg_error_message());
    if (world > 1) cg_comm_abort(comm, 1, message); /* no rank may wait for a failed one; no _SUCCESS */
    fprintf(stderr, "%s\n", message);
  } else {
    float total = (float)rows;
    rc = cg_comm_allreduce_sum(comm, &total, 1);
    if (!rc && rank == 0) {
      char success[4096];
      snprintf(success, sizeof success, "%s/_SUCCESS", output);
      FILE *f = fopen(success, "w");
      if (!f || fclose(f) != 0) rc = cg_error(CG_ERR_IO, "cannot write '%s': %s", success, strerror(errno));
      if (!rc) CG_LOG_INFO("Wrote features of %.0f samples to %s (%d part file(s))", total, output, world);
      else fprintf(stderr, "caffegrid features: %s\n", cg_error_message());
    }
  }
  cg_net_free(net);
  cg_cli_end(&ctx);
  free(list);
  free(conf_net);
  return rc ? 1 : 0;
}
