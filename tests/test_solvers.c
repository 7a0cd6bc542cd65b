/* Solver math against hand-computed updates: every update rule and learning-rate
 * policy over a few steps, and the whole ApplyUpdate chain (weight decay, lr_mult,
 * clipping, iter_size) on a one-layer net whose gradient is known in closed form. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "caffegrid/solver.h"
#include "check.h"
#include "proto/text_format.h"
#include "solvers/lr_policy.h"
#include "solvers/update_rule.h"

/* Three steps of each rule on two elements, against the textbook formula in double. */
static void test_rules(void) {
  const double g_steps[3][2] = {{0.5, -1.0}, {0.25, 2.0}, {-0.75, 0.1}};
  const double lr = 0.1, mom = 0.9, mom2 = 0.999, delta = 1e-8, rms = 0.98;
  const char *names[] = {"SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"};
  for (int r = 0; r < 6; r++) {
    int slots;
    cg_update_fn fn = cg_update_rule_find(names[r], &slots);
    CHECK_MSG(fn != NULL, "rule %s registered", names[r]);
    if (!fn) continue;
    float h[2] = {0}, h2[2] = {0};
    double eh[2] = {0}, eh2[2] = {0};
    for (int t = 0; t < 3; t++) {
      float diff[2] = {(float)g_steps[t][0], (float)g_steps[t][1]};
      cg_update_args a = {.n = 2, .diff = diff, .history = h, .history2 = h2, .local_rate = (float)lr,
                          .momentum = (float)mom, .momentum2 = (float)mom2, .delta = (float)delta,
                          .rms_decay = (float)rms, .iter = t};
      fn(&a);
      for (int i = 0; i < 2; i++) {
        double g = g_steps[t][i], step = 0;
        switch (r) {
          case 0: eh[i] = lr * g + mom * eh[i]; step = eh[i]; break;
          case 1: { double prev = eh[i]; eh[i] = mom * prev + lr * g; step = (1 + mom) * eh[i] - mom * prev; break; }
          case 2: eh[i] += g * g; step = lr * g / (sqrt(eh[i]) + delta); break;
          case 3: eh[i] = rms * eh[i] + (1 - rms) * g * g; step = lr * g / (sqrt(eh[i]) + delta); break;
          case 4: {
            eh[i] = mom * eh[i] + (1 - mom) * g * g;
            double u = g * sqrt((eh2[i] + delta) / (eh[i] + delta));
            eh2[i] = mom * eh2[i] + (1 - mom) * u * u;
            step = lr * u;
            break;
          }
          case 5: {
            eh[i] = mom * eh[i] + (1 - mom) * g;
            eh2[i] = mom2 * eh2[i] + (1 - mom2) * g * g;
            double c = sqrt(1 - pow(mom2, t + 1)) / (1 - pow(mom, t + 1));
            step = lr * c * eh[i] / (sqrt(eh2[i]) + delta);
            break;
          }
        }
        CHECK_MSG(fabs(diff[i] - step) <= 1e-5 * fmax(1, fabs(step)), "%s step %d elem %d: %g vs %g", names[r], t, i,
                  diff[i], step);
      }
    }
  }
  int slots;
  CHECK(cg_update_rule_find("Adamax", &slots) == NULL);
}

static Caffe__SolverParameter *solver_param(const char *text) {
  ProtobufCMessage *m = NULL;
  if (cg_text_parse(&caffe__solver_parameter__descriptor, text, strlen(text), "test", &m)) {
    fprintf(stderr, "%s\n", cg_error_message());
    return NULL;
  }
  return (Caffe__SolverParameter *)m;
}

static void test_policies(void) {
  struct {
    const char *text;
    int iter;
    double expected;
  } cases[] = {
      {"base_lr: 0.1 lr_policy: 'fixed'", 1234, 0.1},
      {"base_lr: 0.1 lr_policy: 'step' gamma: 0.5 stepsize: 100", 250, 0.1 * 0.25},
      {"base_lr: 0.1 lr_policy: 'exp' gamma: 0.99", 10, 0.1 * pow(0.99, 10)},
      {"base_lr: 0.01 lr_policy: 'inv' gamma: 0.0001 power: 0.75", 5000, 0.01 * pow(1 + 0.0001 * 5000, -0.75)},
      {"base_lr: 0.1 lr_policy: 'multistep' gamma: 0.1 stepvalue: 100 stepvalue: 200", 250, 0.1 * 0.01},
      {"base_lr: 0.1 lr_policy: 'multistep' gamma: 0.1 stepvalue: 100 stepvalue: 200", 150, 0.1 * 0.1},
      {"base_lr: 0.1 lr_policy: 'poly' power: 2 max_iter: 1000", 250, 0.1 * pow(0.75, 2)},
      {"base_lr: 0.1 lr_policy: 'sigmoid' gamma: 0.05 stepsize: 100", 120, 0.1 / (1 + exp(-0.05 * 20))},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Caffe__SolverParameter *p = solver_param(cases[i].text);
    CHECK(p != NULL);
    if (!p) continue;
    CHECK_EQ_INT(cg_lr_policy_check(p, "test"), 0);
    int step = 0;
    /* multistep walks through the iterations as training does */
    double rate = 0;
    for (int it = 0; it <= cases[i].iter; it++) rate = cg_lr_policy_rate(p, it, &step);
    CHECK_MSG(fabs(rate - cases[i].expected) <= 1e-6 * cases[i].expected, "%s at %d: %g vs %g", cases[i].text,
              cases[i].iter, rate, cases[i].expected);
    protobuf_c_message_free_unpacked(&p->base, NULL);
  }
  const char *bad[][2] = {
      {"base_lr: 0.1 lr_policy: 'cosine'", "unknown policy 'cosine'"},
      {"base_lr: 0.1 lr_policy: 'multistep' stepvalue: 200 stepvalue: 100", "stepvalue"},
      {"base_lr: 0.1 lr_policy: 'step'", "stepsize"},
  };
  for (size_t i = 0; i < 3; i++) {
    Caffe__SolverParameter *p = solver_param(bad[i][0]);
    CHECK(p && cg_lr_policy_check(p, "s.prototxt") != 0);
    CHECK_STR_CONTAINS(cg_error_message(), bad[i][1]);
    if (p) protobuf_c_message_free_unpacked(&p->base, NULL);
  }
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

/* y = W x + b on a constant input (iter_size passes over it average to the same gradient), EuclideanLoss against a constant target:
 * dL/dW = (y - t) x^T / N, dL/db = (y - t) / N (N = batch). Two SGD steps with
 * momentum, L2 decay (decay_mult 0 on the bias), lr_mult 2 on the bias. */
static void test_apply_update(const char *dir, bool clip, int iter_size) {
  char net[512], solver[512];
  snprintf(net, sizeof net, "%s/tiny_net.prototxt", dir);
  snprintf(solver, sizeof solver, "%s/tiny_solver%d_%d.prototxt", dir, clip, iter_size);
  write_file(net,
             "layer { name: 'x' type: 'DummyData' top: 'x' top: 't'\n"
             "  dummy_data_param { shape { dim: 1 dim: 2 } shape { dim: 1 dim: 1 }\n"
             "    data_filler { type: 'constant' value: 2 } data_filler { type: 'constant' value: 1 } } }\n"
             "layer { name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'y'\n"
             "  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }\n"
             "  inner_product_param { num_output: 1 weight_filler { type: 'constant' value: 0.5 }\n"
             "    bias_filler { type: 'constant' value: 0.25 } } }\n"
             "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'y' bottom: 't' top: 'loss' }\n");
  char text[1024];
  snprintf(text, sizeof text,
           "net: '%s' base_lr: 0.1 lr_policy: 'fixed' momentum: 0.9 weight_decay: 0.01 max_iter: 2 display: 0 "
           "snapshot_after_train: false random_seed: 1 iter_size: %d %s",
           net, iter_size, clip ? "clip_gradients: 0.5" : "");
  write_file(solver, text);
  cg_solver *s = NULL;
  cg_solver_options opt = {.world_size = 1, .no_metrics = true};
  int rc = cg_solver_create_from_file(solver, &opt, &s);
  CHECK_MSG(rc == 0, "solver: %s", cg_error_message());
  if (rc) return;
  CHECK_EQ_INT(cg_solver_step(s, 2), 0);
  /* expected, in double */
  double w[2] = {0.5, 0.5}, b = 0.25, hw[2] = {0, 0}, hb = 0, x[2] = {2, 2}, t = 1;
  for (int step = 0; step < 2; step++) {
    double y = w[0] * x[0] + w[1] * x[1] + b, gw[2], gb = y - t;
    for (int i = 0; i < 2; i++) gw[i] = (y - t) * x[i];
    if (clip) {
      double norm = sqrt(gw[0] * gw[0] + gw[1] * gw[1] + gb * gb);
      if (norm > 0.5)
        for (int i = 0; i < 2; i++) gw[i] *= 0.5 / norm;
      if (norm > 0.5) gb *= 0.5 / norm;
    }
    for (int i = 0; i < 2; i++) {
      gw[i] += 0.01 * w[i];
      hw[i] = 0.1 * gw[i] + 0.9 * hw[i];
      w[i] -= hw[i];
    }
    hb = 0.2 * gb + 0.9 * hb;
    b -= hb;
  }
  cg_net *n = cg_solver_net(s);
  cg_blob *weight = NULL, *bias = NULL;
  for (int i = 0; i < cg_net_num_layers(n); i++)
    if (strcmp(cg_net_layer_name(n, i), "ip") == 0) weight = cg_net_layer_param(n, i, 0), bias = cg_net_layer_param(n, i, 1);
  CHECK(weight && bias);
  if (weight && bias) {
    CHECK_NEAR(weight->data[0], w[0], 1e-6);
    CHECK_NEAR(weight->data[1], w[1], 1e-6);
    CHECK_NEAR(bias->data[0], b, 1e-6);
  }
  CHECK_EQ_INT(cg_solver_iter(s), 2);
  cg_solver_free(s);
}

static void test_bad_solvers(const char *dir) {
  struct {
    const char *text, *expected;
  } cases[] = {
      {"net: 'missing.prototxt' base_lr: 0.1 lr_policy: 'fixed'", "missing.prototxt"},
      {"net: 'tiny_net.prototxt' base_lr: 0.1 lr_policy: 'fixed' type: 'Adamax'", "unknown solver type 'Adamax'"},
      {"net: 'tiny_net.prototxt' base_lr: 0.1 lr_policy: 'triangle'", "unknown policy 'triangle'"},
      {"net: 'tiny_net.prototxt' base_lr: 0.1 lr_policy: 'multistep' stepvalue: 5 stepvalue: 3", "stepvalue"},
      {"base_lr: 0.1 lr_policy: 'fixed'", "no net given"},
      {"net: 'tiny_net.prototxt' base_lr: 0.1 lr_policy: 'fixed' solver_type: ADAM type: 'SGD'", "solver_type"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad%zu.prototxt", dir, i);
    write_file(path, cases[i].text);
    cg_solver *s = NULL;
    cg_solver_options opt = {.world_size = 1, .no_metrics = true};
    CHECK(cg_solver_create_from_file(path, &opt, &s) != 0);
    CHECK_STR_CONTAINS(cg_error_message(), cases[i].expected);
    CHECK_STR_CONTAINS(cg_error_message(), path);
    cg_solver_free(s);
  }
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) fputs(text, f), fclose(f);
}

/* The net a solver file names: as written when that exists, else beside the solver
 * (from any working directory); test_iter; no net named is an error naming the file. */
static void test_solver_file_net(const char *dir) {
  char solver[600], net[600], other[600], *found = NULL;
  snprintf(solver, sizeof solver, "%s/s.prototxt", dir);
  snprintf(net, sizeof net, "%s/n.prototxt", dir);
  write_text(net, "name: 'n'\n");
  write_text(solver, "net: 'n.prototxt'\ntest_iter: 7\nbase_lr: 0.1\n");
  long test_iter = -1;
  CHECK_EQ_INT(cg_solver_file_net(solver, 1, &found, &test_iter), 0);
  CHECK(found && strcmp(found, net) == 0);
  CHECK_EQ_INT(test_iter, 7);
  free(found);
  snprintf(other, sizeof other, "%s/t.prototxt", dir); /* test_net when there is no net; test_iter left alone */
  write_text(other, "test_net: 'n.prototxt'\ntrain_net: 'x.prototxt'\n");
  test_iter = -1;
  CHECK_EQ_INT(cg_solver_file_net(other, 1, &found, &test_iter), 0);
  CHECK(found && strcmp(found, net) == 0 && test_iter == -1);
  free(found);
  CHECK_EQ_INT(cg_solver_file_net(other, 0, &found, NULL), 0); /* TRAIN: the train net, as written (missing) */
  CHECK(found && strcmp(found, "x.prototxt") == 0);
  free(found);
  write_text(other, "net: 'missing.prototxt'\n"); /* found nowhere: as written, for the caller's message */
  CHECK_EQ_INT(cg_solver_file_net(other, 1, &found, NULL), 0);
  CHECK(found && strcmp(found, "missing.prototxt") == 0);
  free(found);
  write_text(other, "base_lr: 0.1\n");
  CHECK(cg_solver_file_net(other, 1, &found, NULL) != 0 && found == NULL);
  CHECK_STR_CONTAINS(cg_error_message(), other);
}

/* A solver's text read by the library for a host program (fields written Caffe's ways),
 * and built from text with the options' overrides of its fields. */
static void test_solver_text_and_overrides(const char *dir) {
  const char *text = "# a comment\nnet:'gone/net.prototxt' max_iter:70 snapshot: 5 test_iter: [4] test_interval: 10\n"
                     "test_initialization: false iter_size: 2 base_lr: 0.1 lr_policy: 'fixed'\n";
  cg_solver_info info;
  CHECK_EQ_INT(cg_solver_text_info(text, strlen(text), "/data/user/lenet_solver.prototxt", &info), 0);
  CHECK(strcmp(info.net, "gone/net.prototxt") == 0);
  CHECK(strcmp(info.snapshot_prefix, "/data/user/lenet_solver") == 0); /* Caffe's default, from the file name */
  CHECK(info.max_iter == 70 && info.snapshot == 5 && info.test_iter == 4 && info.test_interval == 10);
  CHECK(info.iter_size == 2 && !info.test_initialization);
  const char *bad = "max_iter: 7\nbase_lr: 'fast'\n";
  CHECK(cg_solver_text_info(bad, strlen(bad), "user_solver.prototxt", &info) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "user_solver.prototxt:2:");
  /* the same text built with its net replaced, no tests, no interval snapshots, 3 iterations */
  char net[512], prefix[512];
  snprintf(net, sizeof net, "%s/tiny_net.prototxt", dir); /* written by test_apply_update */
  snprintf(prefix, sizeof prefix, "%s/override", dir);
  cg_solver_options opt = {.world_size = 1, .no_metrics = true, .net_path = net, .snapshot_prefix = prefix,
                           .solver_max_iter = 3, .no_interval_snapshots = true, .no_testing = true};
  cg_solver *s = NULL;
  int rc = cg_solver_create_from_text(text, strlen(text), "/data/user/lenet_solver.prototxt", &opt, &s);
  CHECK_MSG(rc == 0, "from text: %s", cg_error_message());
  if (!rc) {
    CHECK_EQ_INT(cg_solver_num_test_nets(s), 0);
    CHECK_EQ_INT(cg_solver_solve(s), 0);
    CHECK_EQ_INT(cg_solver_iter(s), 3); /* max_iter 3, and no snapshot at 5 to reach */
    char path[600];
    snprintf(path, sizeof path, "%s_iter_3.caffemodel", prefix); /* snapshot_after_train, at the new prefix */
    CHECK(access(path, F_OK) == 0);
    cg_solver_free(s);
  }
  cg_solver_options one_test = {.world_size = 1, .no_metrics = true, .net_path = net, .test_iter = 2};
  rc = cg_solver_create_from_text(text, strlen(text), "/data/user/lenet_solver.prototxt", &one_test, &s);
  CHECK_MSG(rc == 0, "with test_iter: %s", cg_error_message());
  if (!rc) {
    CHECK_EQ_INT(cg_solver_num_test_nets(s), 1);
    cg_solver_free(s);
  }
  /* without the net override, the missing net is named as the user wrote it */
  cg_solver_options plain = {.world_size = 1, .no_metrics = true};
  CHECK(cg_solver_create_from_text(text, strlen(text), "/data/user/lenet_solver.prototxt", &plain, &s) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "gone/net.prototxt");
}

/* NaN weights: a step stops with CG_ERR_NONFINITE naming the iteration and the layer, a
 * snapshot refuses to write them; with continue_on_nonfinite both go on. */
static void test_nonfinite(const char *dir) {
  char solver[512], prefix[512], path[600];
  snprintf(solver, sizeof solver, "%s/nan_solver.prototxt", dir);
  snprintf(prefix, sizeof prefix, "%s/nan", dir);
  char text[1024];
  snprintf(text, sizeof text, "net: '%s/tiny_net.prototxt' base_lr: 0.1 lr_policy: 'fixed' max_iter: 5 display: 0 "
           "snapshot_prefix: '%s' random_seed: 1", dir, prefix);
  write_file(solver, text);
  for (int keep_going = 0; keep_going < 2; keep_going++) {
    cg_solver_options opt = {.world_size = 1, .no_metrics = true, .continue_on_nonfinite = keep_going};
    cg_solver *s = NULL;
    if (cg_solver_create_from_file(solver, &opt, &s) != 0) {
      CHECK_MSG(0, "solver: %s", cg_error_message());
      return;
    }
    cg_net_param_data(cg_solver_net(s))[0] = NAN; /* ip's first weight */
    int rc = cg_solver_snapshot(s);
    snprintf(path, sizeof path, "%s_iter_0.caffemodel", prefix);
    if (keep_going) {
      CHECK_EQ_INT(rc, 0);
      CHECK_EQ_INT(cg_solver_step(s, 1), 0);
    } else {
      CHECK_EQ_INT(rc, CG_ERR_NONFINITE);
      CHECK_STR_CONTAINS(cg_error_message(), "the weights went non-finite");
      CHECK_STR_CONTAINS(cg_error_message(), "layer 'ip' (InnerProduct): its parameter blob 0");
      CHECK(access(path, F_OK) != 0);
      CHECK_EQ_INT(cg_solver_step(s, 1), CG_ERR_NONFINITE);
      CHECK_STR_CONTAINS(cg_error_message(), "nan_solver.prototxt: iteration 0: the loss went non-finite");
      CHECK_EQ_INT(cg_solver_iter(s), 0); /* stopped before the update */
    }
    cg_solver_free(s);
  }
}

int main(void) {
  char dir[] = "/tmp/cg_solvers_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  test_rules();
  test_policies();
  test_apply_update(dir, false, 1);
  test_apply_update(dir, true, 1);
  test_apply_update(dir, false, 3); /* gradients of 3 identical passes, averaged: the same step */
  test_bad_solvers(dir);
  test_solver_file_net(dir);
  test_solver_text_and_overrides(dir);
  test_nonfinite(dir);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) fprintf(stderr, "cannot clean %s\n", dir);
  return CHECK_REPORT();
}
