/* The solver loop, as Caffe's Solver::Step/Solve and SGDSolver::ApplyUpdate:
 * clear gradients, forward/backward iter_size times, smoothed loss and display,
 * then clip -> normalise -> regularise -> update rule -> weights -= step. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "caffegrid/local_path.h"
#include "caffegrid/log.h"
#include "core/net_proto.h"
#include "core/paths.h"
#include "solvers/prefix_lock.h"
#include "math/fpmode.h"
#include "proto/proto_io.h"
#include "solvers/lr_policy.h"
#include "solvers/nonfinite.h"
#include "solvers/solver_impl.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int build_net(cg_solver *s, const char *path, const Caffe__NetParameter *inline_param,
                     const Caffe__NetState *state, int phase, uint64_t seed, cg_net **out) {
  const char *stages[32];
  /* test nets read each rank's share of the test set in order, nothing left out */
  cg_net_options o = {.phase = phase, .seed = seed, .rank = s->opt.rank, .world_size = s->opt.world_size,
                      .exact_pass = phase == 1, .data_threads = s->opt.data_threads,
                      .skip_bad_records = s->opt.skip_bad_records, .max_bad_fraction = s->opt.max_bad_fraction,
                      .backend = s->opt.backend};
  if (state) {
    o.level = state->level;
    for (size_t i = 0; i < state->n_stage && i < 32; i++) stages[o.num_stages++] = state->stage[i];
    o.stages = stages;
  }
  if (inline_param) {
    o.source_name = s->source_name;
    return cg_net_create(inline_param, &o, out);
  }
  char *resolved = cg_path_resolve(path, s->source_name);
  if (!resolved) return cg_error(CG_ERR_NOMEM, "out of memory");
  if (!cg_path_exists(resolved)) {
    int rc = cg_error(CG_ERR_IO, "%s: the net file '%s' does not exist (looked in the working directory and beside the solver)",
                      s->source_name, path);
    free(resolved);
    return rc;
  }
  o.source_name = resolved;
  int rc = cg_net_create_from_file(resolved, &o, out);
  free(resolved);
  return rc;
}

static int build_nets(cg_solver *s, uint64_t seed) {
  const Caffe__SolverParameter *p = s->param;
  int given = (p->net != NULL) + (p->net_param != NULL) + (p->train_net != NULL) + (p->train_net_param != NULL);
  if (given == 0)
    return cg_error(CG_ERR_INVALID, "%s: no net given (set 'net', 'net_param', 'train_net' or 'train_net_param')",
                    s->source_name);
  if (given > 1)
    return cg_error(CG_ERR_INVALID, "%s: give only one of 'net', 'net_param', 'train_net', 'train_net_param'",
                    s->source_name);
  const char *train_path = p->train_net ? p->train_net : p->net;
  const Caffe__NetParameter *train_inline = p->train_net_param ? p->train_net_param : p->net_param;
  int rc = build_net(s, train_path, train_inline, p->train_state, 0, seed, &s->net);
  if (rc) return rc;
  size_t specified = p->n_test_net_param + p->n_test_net;
  bool generic = p->net || p->net_param;
  size_t total = specified + (generic && p->n_test_iter > specified ? p->n_test_iter - specified : 0);
  if (p->n_test_iter != total && (total || p->n_test_iter))
    return cg_error(CG_ERR_INVALID, "%s: field 'test_iter' is given %zu times for %zu test nets", s->source_name,
                    p->n_test_iter, total);
  if (p->n_test_state && p->n_test_state != total)
    return cg_error(CG_ERR_INVALID, "%s: field 'test_state' is given %zu times for %zu test nets", s->source_name,
                    p->n_test_state, total);
  if (total > CG_MAX_TEST_NETS) return cg_error(CG_ERR_INVALID, "%s: at most %d test nets", s->source_name, CG_MAX_TEST_NETS);
  for (size_t i = 0; i < total && !rc; i++) {
    const Caffe__NetState *state = p->n_test_state ? p->test_state[i] : NULL;
    if (i < p->n_test_net_param)
      rc = build_net(s, NULL, p->test_net_param[i], state, 1, seed + 7, &s->test_nets[i]);
    else if (i < specified)
      rc = build_net(s, p->test_net[i - p->n_test_net_param], NULL, state, 1, seed + 7, &s->test_nets[i]);
    else
      rc = build_net(s, p->net, p->net_param, state, 1, seed + 7, &s->test_nets[i]);
    if (!rc) s->num_test_nets = (int)i + 1;
  }
  return rc;
}

static int check_param(const cg_solver *s) {
  const Caffe__SolverParameter *p = s->param;
  if (p->iter_size < 1) return cg_error(CG_ERR_INVALID, "%s: field 'iter_size' must be at least 1", s->source_name);
  if (p->average_loss < 1) return cg_error(CG_ERR_INVALID, "%s: field 'average_loss' must be at least 1", s->source_name);
  if (p->test_interval < 0) return cg_error(CG_ERR_INVALID, "%s: field 'test_interval' must not be negative", s->source_name);
  for (size_t i = 0; i < p->n_test_iter; i++)
    if (p->test_iter[i] <= 0) return cg_error(CG_ERR_INVALID, "%s: field 'test_iter' must be positive", s->source_name);
  if (p->regularization_type && strcmp(p->regularization_type, "L1") != 0 && strcmp(p->regularization_type, "L2") != 0)
    return cg_error(CG_ERR_INVALID, "%s: field 'regularization_type': unknown type '%s' (L1 or L2)", s->source_name,
                    p->regularization_type);
  if (p->solver_mode == CAFFE__SOLVER_PARAMETER__SOLVER_MODE__GPU && p->has_solver_mode)
    CG_LOG_INFO("solver_mode: GPU requested; this build runs on the CPU");
  return cg_lr_policy_check(p, s->source_name);
}

/* The options' overrides written into the parsed solver (see cg_solver_options). */
static int apply_overrides(Caffe__SolverParameter *p, const cg_solver_options *o) {
  if (o->net_path) {
    char *net = strdup(o->net_path);
    if (!net) return cg_error(CG_ERR_NOMEM, "out of memory");
    free(p->net), free(p->train_net);
    p->train_net = NULL, p->net = net;
    if (p->net_param) protobuf_c_message_free_unpacked(&p->net_param->base, NULL), p->net_param = NULL;
    if (p->train_net_param)
      protobuf_c_message_free_unpacked(&p->train_net_param->base, NULL), p->train_net_param = NULL;
  }
  if (o->snapshot_prefix) {
    char *prefix = strdup(o->snapshot_prefix);
    if (!prefix) return cg_error(CG_ERR_NOMEM, "out of memory");
    free(p->snapshot_prefix);
    p->snapshot_prefix = prefix;
  }
  if (o->solver_max_iter > 0) p->max_iter = (int32_t)o->solver_max_iter;
  if (o->no_interval_snapshots) p->snapshot = 0;
  if (o->no_testing || o->test_iter > 0) { /* test nets: none, or one of the train net */
    for (size_t i = 0; i < p->n_test_net; i++) free(p->test_net[i]);
    for (size_t i = 0; i < p->n_test_net_param; i++) protobuf_c_message_free_unpacked(&p->test_net_param[i]->base, NULL);
    for (size_t i = 0; i < p->n_test_state; i++) protobuf_c_message_free_unpacked(&p->test_state[i]->base, NULL);
    p->n_test_net = p->n_test_net_param = p->n_test_state = 0;
    p->n_test_iter = 0;
  }
  if (o->no_testing) {
    p->test_interval = 0;
    p->test_initialization = true;
    p->test_compute_loss = false;
  } else if (o->test_iter > 0) {
    if (!p->test_iter) p->test_iter = calloc(1, sizeof *p->test_iter);
    if (!p->test_iter) return cg_error(CG_ERR_NOMEM, "out of memory");
    p->test_iter[0] = o->test_iter, p->n_test_iter = 1;
  }
  return CG_OK;
}

static int create_solver(const char *name, const char *text, size_t len, const cg_solver_options *opt, cg_solver **out) {
  *out = NULL;
  cg_solver *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  if (opt) s->opt = *opt;
  s->prefix_lock = -1;
  s->metrics_resumed_at = -1;
  if (s->opt.comm) {
    s->opt.rank = cg_comm_rank(s->opt.comm);
    s->opt.world_size = cg_comm_size(s->opt.comm);
  }
  if (s->opt.world_size < 1) s->opt.world_size = 1;
  s->opt.net_path = s->opt.snapshot_prefix = NULL; /* borrowed: applied to the parameters below, not kept */
  s->source_name = strdup(name);
  int rc = text ? cg_parse_solver_text(text, len, name, &s->param) : cg_read_solver_text(name, &s->param);
  if (!rc && opt) rc = apply_overrides(s->param, opt);
  if (!rc) rc = check_param(s);
  if (!rc && s->param->snapshot_prefix) { /* file: URIs are local; other schemes are refused, not made folders */
    const char *local;
    rc = cg_local_path(s->param->snapshot_prefix, "snapshot_prefix", &local);
    if (rc) rc = cg_error_wrap(rc, "%s: ", name);
    else if (local != s->param->snapshot_prefix) memmove(s->param->snapshot_prefix, local, strlen(local) + 1);
  }
  /* before anything is written under the prefix: one run per prefix */
  if (!rc && s->opt.rank == 0 && !s->opt.no_prefix_lock && s->param->snapshot_prefix && s->param->snapshot_prefix[0])
    rc = cg_prefix_lock(s->param->snapshot_prefix, name, &s->prefix_lock);
  if (!rc) {
    const char *type = s->param->type ? s->param->type : "SGD";
    s->update = cg_update_rule_find(type, &s->history_slots);
    if (!s->update)
      rc = cg_error(CG_ERR_INVALID, "%s: field 'type': unknown solver type '%s' (known: SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam)",
                    name, type);
  }
  uint64_t seed = 0;
  if (!rc) {
    seed = s->param->random_seed >= 0 ? (uint64_t)s->param->random_seed : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    /* ranks must agree on the seed: it decides the shuffles that split the data between them */
    if (s->opt.comm && s->opt.world_size > 1) rc = cg_comm_broadcast(s->opt.comm, &seed, sizeof seed, 0);
  }
  if (!rc) {
    rc = build_nets(s, seed);
  }
  if (!rc) {
    size_t n = cg_net_param_count(s->net) * (size_t)s->history_slots;
    s->history = calloc(n ? n : 1, sizeof(float));
    s->loss_window = calloc((size_t)s->param->average_loss, sizeof(float));
    if (!s->history || !s->loss_window) rc = cg_error(CG_ERR_NOMEM, "out of memory for the solver history");
  }
  if (!rc && s->opt.comm && s->opt.world_size > 1) rc = cg_solver_check_same_job(s);
  if (!rc && s->opt.comm && s->opt.world_size > 1) rc = cg_dp_create(s->opt.comm, s->net, s->opt.bucket_bytes, &s->dp);
  if (!rc && !s->opt.no_metrics && s->opt.rank == 0 && s->param->snapshot_prefix) {
    if (asprintf(&s->metrics_path, "%s_metrics.jsonl", s->param->snapshot_prefix) < 0) s->metrics_path = NULL;
  }
  if (rc) {
    cg_solver_free(s);
    return rc;
  }
  CG_LOG_INFO("Solver scaffolding done.");
  *out = s;
  return CG_OK;
}

int cg_solver_create_from_file(const char *path, const cg_solver_options *opt, cg_solver **out) {
  return create_solver(path, NULL, 0, opt, out);
}

int cg_solver_create_from_text(const char *text, size_t len, const char *source_name, const cg_solver_options *opt,
                               cg_solver **out) {
  if (!text) return *out = NULL, cg_error(CG_ERR_INVALID, "cg_solver_create_from_text: no text");
  return create_solver(source_name ? source_name : "solver", text, len, opt, out);
}

void cg_solver_free(cg_solver *s) {
  if (!s) return;
  cg_dp_free(s->dp);
  cg_net_free(s->net);
  for (int i = 0; i < s->num_test_nets; i++) cg_net_free(s->test_nets[i]);
  for (int i = 0; i < CG_MAX_TEST_NETS; i++)
    for (int j = 0; j < CG_MAX_TEST_OUTPUTS; j++) free(s->last_names[i][j]);
  if (s->metrics) fclose(s->metrics);
  free(s->metrics_path);
  cg_prefix_unlock(s->prefix_lock);
  free(s->history);
  free(s->loss_window);
  free(s->source_name);
  if (s->param) protobuf_c_message_free_unpacked(&s->param->base, NULL);
  free(s);
}

int cg_solver_load_weights(cg_solver *s, const char *paths) {
  char *copy = strdup(paths);
  int rc = CG_OK;
  for (char *save, *p = strtok_r(copy, ",", &save); p && !rc; p = strtok_r(NULL, ",", &save)) {
    CG_LOG_INFO("Finetuning from %s", p);
    rc = cg_net_load_weights(s->net, p);
    for (int i = 0; i < s->num_test_nets && !rc; i++) rc = cg_net_load_weights(s->test_nets[i], p);
  }
  free(copy);
  return rc;
}

int cg_solver_test_all(cg_solver *s) {
  for (int t = 0; t < s->num_test_nets; t++) {
    cg_net *net = s->test_nets[t];
    CG_LOG_INFO("Iteration %d, Testing net (#%d)", s->iter, t);
    cg_net_share_weights_from(net, s->net);
    int outputs = cg_net_num_outputs(net);
    double *scores = calloc(cg_net_num_output_values(net) + 1, sizeof(double));
    if (!scores) return cg_error(CG_ERR_NOMEM, "out of memory");
    double loss = 0;
    /* with W ranks each scores its own share: test_iter / W batches, then the means are averaged */
    int world = s->dp ? s->opt.world_size : 1;
    int iters = (s->param->test_iter[t] + world - 1) / world;
    int rc = cg_net_score(net, iters, s->dp ? s->opt.comm : NULL, scores, &loss, NULL, NULL);
    if (rc) {
      free(scores);
      return rc;
    }
    if (s->param->test_compute_loss) CG_LOG_INFO("Test loss: %g", loss);
    char json[4096];
    int used = snprintf(json, sizeof json, "{\"type\":\"test\",\"iter\":%d,\"net\":%d", s->iter, t);
    size_t idx = 0;
    s->last_count[t] = 0;
    for (int j = 0; j < outputs; j++) {
      cg_blob *b = cg_net_output(net, j);
      float weight = cg_net_output_loss_weight(net, j);
      for (size_t k = 0; k < b->count; k++, idx++) {
        double mean = scores[idx];
        int o = (int)idx;
        if (weight != 0)
          CG_LOG_INFO("    Test net output #%d: %s = %g (* %g = %g loss)", o, b->name, mean, weight, weight * mean);
        else
          CG_LOG_INFO("    Test net output #%d: %s = %g", o, b->name, mean);
        if (used > 0 && (size_t)used < sizeof json - 128)
          used += snprintf(json + used, sizeof json - (size_t)used, ",\"%s\":%.9g", b->name, mean);
        if (o < CG_MAX_TEST_OUTPUTS) {
          free(s->last_names[t][o]);
          s->last_names[t][o] = strdup(b->name);
          s->last_scores[t][o] = mean;
          s->last_count[t] = o + 1;
        }
      }
    }
    snprintf(json + used, sizeof json - (size_t)used, "}");
    cg_solver_metrics_line(s, json);
    free(scores);
  }
  return CG_OK;
}

double cg_solver_last_test_score(const cg_solver *s, int i, const char *name) {
  if (i < 0 || i >= s->num_test_nets) return NAN;
  for (int o = 0; o < s->last_count[i]; o++)
    if (s->last_names[i][o] && strcmp(s->last_names[i][o], name) == 0) return s->last_scores[i][o];
  return NAN;
}

/* Caffe's clip -> normalise -> regularise -> rule, then weights -= step, over the flat arrays. */
static void apply_update(cg_solver *s, float rate) {
  const Caffe__SolverParameter *p = s->param;
  cg_net *net = s->net;
  float *diff_all = cg_net_param_diff(net);
  size_t total = cg_net_param_count(net);
  if (p->clip_gradients >= 0) {
    double sumsq = 0;
    for (size_t i = 0; i < total; i++) sumsq += (double)diff_all[i] * diff_all[i];
    float norm = (float)sqrt(sumsq);
    if (norm > p->clip_gradients) {
      float scale = p->clip_gradients / norm;
      CG_LOG_INFO("Gradient clipping: scaling down gradients (L2 norm %g > %g) by scale factor %g", norm,
                  p->clip_gradients, scale);
      for (size_t i = 0; i < total; i++) diff_all[i] *= scale;
    }
  }
  bool l1 = p->regularization_type && strcmp(p->regularization_type, "L1") == 0;
  size_t offset = 0;
  for (int k = 0; k < cg_net_num_learnable(net); k++) {
    float lr_mult, decay_mult;
    cg_blob *b = cg_net_learnable(net, k, &lr_mult, &decay_mult);
    size_t n = b->count;
    if (p->iter_size > 1)
      for (size_t i = 0; i < n; i++) b->diff[i] *= 1.0f / (float)p->iter_size;
    float decay = p->weight_decay * decay_mult;
    if (decay != 0) {
      if (l1)
        for (size_t i = 0; i < n; i++) b->diff[i] += decay * (float)((b->data[i] > 0) - (b->data[i] < 0));
      else
        for (size_t i = 0; i < n; i++) b->diff[i] += decay * b->data[i];
    }
    cg_update_args a = {.n = n, .diff = b->diff, .history = s->history + offset,
                        .history2 = s->history_slots > 1 ? s->history + total + offset : NULL,
                        .local_rate = rate * lr_mult, .momentum = p->momentum, .momentum2 = p->momentum2,
                        .delta = p->delta, .rms_decay = p->rms_decay, .iter = s->iter};
    s->update(&a);
    for (size_t i = 0; i < n; i++) b->data[i] -= b->diff[i];
    offset += n;
  }
}

static void update_smoothed_loss(cg_solver *s, float loss, int start_iter) {
  int window = s->param->average_loss;
  if (s->loss_count < window) {
    s->loss_window[s->loss_count++] = loss;
    s->smoothed_loss = (s->smoothed_loss * (float)(s->loss_count - 1) + loss) / (float)s->loss_count;
  } else {
    int idx = (s->iter - start_iter) % window;
    s->smoothed_loss += (loss - s->loss_window[idx]) / (float)window;
    s->loss_window[idx] = loss;
  }
}

static void log_train_outputs(cg_solver *s) {
  int idx = 0;
  for (int j = 0; j < cg_net_num_outputs(s->net); j++) {
    cg_blob *b = cg_net_output(s->net, j);
    float weight = cg_net_output_loss_weight(s->net, j);
    for (size_t k = 0; k < b->count; k++, idx++) {
      if (weight != 0)
        CG_LOG_INFO("    Train net output #%d: %s = %g (* %g = %g loss)", idx, b->name, b->data[k], weight,
                    weight * b->data[k]);
      else
        CG_LOG_INFO("    Train net output #%d: %s = %g", idx, b->name, b->data[k]);
    }
  }
}

static void draw_progress(const cg_solver *s, int done, int total, double started) {
  if (!s->opt.progress || !isatty(2) || total <= 0) return;
  double elapsed = now_s() - started, rate = done / (elapsed > 0 ? elapsed : 1e-9);
  double eta = rate > 0 ? (total - done) / rate : 0;
  int width = 30, filled = (int)((long)width * done / total);
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
  bar[width] = '\0';
  fprintf(stderr, "\r[%s] %d/%d  %.1f iter/s  ETA %.0fs ", bar, done, total, rate, eta);
  if (done == total) fprintf(stderr, "\n");
}

/* Where the time of the iterations went: rank 0's view, logged and in the metrics file. */
static void report_timing(cg_solver *s, int iterations, double seconds, double data_wait0, double comm0) {
  if (iterations <= 0 || s->opt.rank != 0) return;
  double ms = 1e3 / iterations, data = (cg_net_data_wait_seconds(s->net) - data_wait0) * ms;
  double comm = s->dp ? (cg_dp_exposed_comm_seconds(s->dp) - comm0) * ms : 0, total = seconds * ms;
  CG_LOG_INFO("Time per iteration: %.3f ms (compute %.3f, exposed communication %.3f, data wait %.3f) on %d rank(s)",
              total, total - comm - data, comm, data, s->opt.world_size);
  char json[320];
  snprintf(json, sizeof json,
           "{\"type\":\"timing\",\"iter\":%d,\"iterations\":%d,\"ranks\":%d,\"ms_per_iter\":%.4f,\"compute_ms\":%.4f,"
           "\"exposed_comm_ms\":%.4f,\"data_wait_ms\":%.4f}",
           s->iter, iterations, s->opt.world_size, total, total - comm - data, comm, data);
  cg_solver_metrics_line(s, json);
}

static int check_finite(cg_solver *s, float loss, bool display) {
  const char *what = NULL;
  int n = cg_net_num_learnable(s->net);
  const cg_blob *last = n ? cg_net_learnable(s->net, n - 1, NULL, NULL) : NULL;
  if (!s->dp && !isfinite(loss)) what = "the loss";
  else if (last && !cg_all_finite(last->diff, last->count)) what = "the gradient";
  else if (display && !cg_all_finite(cg_net_param_diff(s->net), cg_net_param_count(s->net))) what = "the gradient";
  else if (display && cg_net_nonfinite_params(s->net)) what = "the weights";
  if (!what) return CG_OK;
  if (!s->opt.continue_on_nonfinite) return cg_nonfinite_error(s->net, s->source_name, s->iter, what);
  if (display) CG_LOG_WARN("Iteration %d: %s is non-finite; training on (-on_nonfinite continue)", s->iter, what);
  return CG_OK;
}

/* The host's request after an iteration, the same on every rank (the strongest asked). */
static int poll_action(cg_solver *s, cg_solver_action *action) {
  *action = CG_ACTION_NONE;
  if (!s->opt.poll) return CG_OK;
  cg_solver_action mine = s->opt.poll(s->opt.poll_user);
  if (!s->dp) return *action = mine, CG_OK;
  double agreed = (double)mine;
  int rc = cg_comm_allreduce_max(s->opt.comm, &agreed, 1);
  *action = (cg_solver_action)(int)agreed;
  return rc;
}

static int solver_step(cg_solver *s, int iters) {
  const Caffe__SolverParameter *p = s->param;
  int start_iter = s->iter, stop_iter = s->iter + iters;
  double data_wait0 = cg_net_data_wait_seconds(s->net), comm0 = s->dp ? cg_dp_exposed_comm_seconds(s->dp) : 0;
  double timing_start = 0;
  int timed_from = -1;
  s->loss_count = 0;
  s->smoothed_loss = 0;
  s->stopped = CG_ACTION_NONE;
  double started = now_s(), last_display = started;
  int last_display_iter = s->iter;
  if (s->dp && !s->weights_synced) {
    /* every rank starts from rank 0's weights and solver history */
    size_t history = cg_net_param_count(s->net) * (size_t)s->history_slots;
    int rc = cg_dp_broadcast_weights(s->dp, s->history, history);
    if (rc) return rc;
    s->weights_synced = true;
  }
  while (s->iter < stop_iter) {
    if (timed_from < 0 && s->iter > start_iter) { /* the first iteration warms caches up; time the rest */
      timed_from = s->iter;
      timing_start = now_s();
      data_wait0 = cg_net_data_wait_seconds(s->net);
      comm0 = s->dp ? cg_dp_exposed_comm_seconds(s->dp) : 0;
    }
    cg_net_clear_param_diffs(s->net);
    if (p->test_interval && s->iter % p->test_interval == 0 && (s->iter > 0 || p->test_initialization)) {
      int rc = cg_solver_test_all(s);
      if (rc) return rc;
    }
    bool display = p->display && s->iter % p->display == 0;
    float loss = 0;
    for (int i = 0; i < p->iter_size; i++) {
      float l;
      int rc = cg_net_forward(s->net, &l);
      if (rc) return rc;
      if (s->dp && i == p->iter_size - 1) cg_dp_arm(s->dp); /* the last pass completes the gradients */
      cg_net_backward(s->net);
      loss += l;
    }
    loss /= (float)p->iter_size;
    if (s->dp) {
      int rc = cg_dp_finish(s->dp);
      if (!rc && display) rc = cg_dp_mean(s->dp, &loss);
      if (!rc && s->opt.check_every > 0 && s->iter % s->opt.check_every == 0)
        rc = cg_dp_check_consistency(s->dp, s->iter);
      if (rc) return rc;
    }
    /* diverged? The loss (alone; with ranks it is this rank's own) and the last layer's gradient
     * (summed over the ranks, so every rank decides alike) every iteration, everything at a display */
    int rc = check_finite(s, loss, display);
    if (rc) return rc;
    update_smoothed_loss(s, loss, start_iter);
    float rate = cg_lr_policy_rate(p, s->iter, &s->current_step);
    if (display && s->opt.rank == 0) {
      double t = now_s(), lapse = t - last_display;
      int done = s->iter - last_display_iter;
      if (done > 0)
        CG_LOG_INFO("Iteration %d (%.4g iter/s, %.3gs/%d iters), loss = %g", s->iter, done / (lapse > 0 ? lapse : 1e-9),
                    lapse, p->display, s->smoothed_loss);
      else
        CG_LOG_INFO("Iteration %d, loss = %g", s->iter, s->smoothed_loss);
      last_display = t;
      last_display_iter = s->iter;
      log_train_outputs(s);
      CG_LOG_INFO("Iteration %d, lr = %g", s->iter, rate);
      char json[256];
      snprintf(json, sizeof json, "{\"type\":\"train\",\"iter\":%d,\"loss\":%.9g,\"smoothed_loss\":%.9g,\"lr\":%.9g}",
               s->iter, loss, s->smoothed_loss, rate);
      cg_solver_metrics_line(s, json);
    }
    apply_update(s, rate);
    s->iter++;
    draw_progress(s, s->iter - start_iter, iters, started);
    bool snapshotted = p->snapshot && s->iter % p->snapshot == 0;
    if (snapshotted) { /* collective: every rank's run state goes in */
      int rc = cg_solver_snapshot(s);
      if (rc) return rc;
    }
    cg_solver_action action = CG_ACTION_NONE;
    if ((rc = poll_action(s, &action))) return rc;
    if ((action == CG_ACTION_SNAPSHOT || action == CG_ACTION_STOP) && !snapshotted) {
      CG_LOG_INFO("Iteration %d: snapshot requested", s->iter);
      if ((rc = cg_solver_snapshot(s))) return rc;
    }
    if (action == CG_ACTION_STOP || action == CG_ACTION_INTERRUPT) {
      CG_LOG_INFO("Iteration %d: %s requested; stopping", s->iter, action == CG_ACTION_STOP ? "stop" : "interrupt");
      s->stopped = action;
      break;
    }
  }
  if (timed_from >= 0) report_timing(s, s->iter - timed_from, now_s() - timing_start, data_wait0, comm0);
  return CG_OK;
}

int cg_solver_step(cg_solver *s, int iters) {
  unsigned fp = cg_fp_enter(); /* the update and history too (math/fpmode.h) */
  int rc = solver_step(s, iters);
  cg_fp_leave(fp);
  return rc;
}

int cg_solver_solve(cg_solver *s) {
  const Caffe__SolverParameter *p = s->param;
  long max_iter = s->opt.max_iter > 0 ? s->opt.max_iter : p->max_iter;
  CG_LOG_INFO("Solving %s", cg_net_name(s->net));
  CG_LOG_INFO("Learning Rate Policy: %s", p->lr_policy);
  int rc = s->iter < max_iter ? cg_solver_step(s, (int)(max_iter - s->iter)) : CG_OK;
  if (rc) return rc;
  if (s->stopped) { /* a STOP has written its snapshot already; an INTERRUPT wants none */
    CG_LOG_INFO("Optimization stopped early.");
    return CG_OK;
  }
  if (p->snapshot_after_train && (!p->snapshot || s->iter % p->snapshot != 0))
    rc = cg_solver_snapshot(s);
  if (rc) return rc;
  if (p->display && s->iter % p->display == 0) {
    float loss;
    rc = cg_net_forward(s->net, &loss);
    if (!rc && s->dp) rc = cg_dp_mean(s->dp, &loss);
    if (rc) return rc;
    CG_LOG_INFO("Iteration %d, loss = %g", s->iter, loss);
  }
  if (p->test_interval && s->iter % p->test_interval == 0) rc = cg_solver_test_all(s); /* every rank scores its share */
  if (!rc && s->opt.final_model && s->opt.rank == 0) {
    rc = cg_net_save_weights(s->net, s->opt.final_model);
    if (!rc) CG_LOG_INFO("Final model written to %s", s->opt.final_model);
  }
  if (!rc) CG_LOG_INFO("Optimization Done.");
  return rc;
}

int cg_solver_iter(const cg_solver *s) { return s->iter; }
cg_solver_action cg_solver_stopped(const cg_solver *s) { return s->stopped; }
cg_net *cg_solver_net(cg_solver *s) { return s->net; }
int cg_solver_num_test_nets(const cg_solver *s) { return s->num_test_nets; }
cg_net *cg_solver_test_net(cg_solver *s, int i) { return i >= 0 && i < s->num_test_nets ? s->test_nets[i] : NULL; }
