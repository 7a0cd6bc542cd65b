/* Tests for the protobuf layer: the text-format parser and printer, the upgrades
 * of old nets and solvers, and binary reads and atomic writes, against the
 * prototxt, .caffemodel and .solverstate files BVLC Caffe produced. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "check.h"
#include "test_data.h"
#include "proto/caffe.pb-c.h"
#include "proto/proto_io.h"
#include "proto/text_format.h"
#include "proto/upgrade.h"

#define NET_DESC (&caffe__net_parameter__descriptor)
#define SOLVER_DESC (&caffe__solver_parameter__descriptor)

static char data_dir[1024]; /* $SHARED_DATA/caffe_ref */
static char tmp_dir[256];

static void path_in(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void free_msg(void *m) {
  if (m) protobuf_c_message_free_unpacked(m, NULL);
}

/* Whether two messages serialize to the same bytes. */
static int same_bytes(const void *a, const void *b) {
  if (!a || !b) return 0;
  size_t na = protobuf_c_message_get_packed_size(a), nb = protobuf_c_message_get_packed_size(b);
  if (na != nb) return 0;
  uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
  int same = pa && pb && protobuf_c_message_pack(a, pa) == na && protobuf_c_message_pack(b, pb) == nb &&
             memcmp(pa, pb, na) == 0;
  free(pa);
  free(pb);
  return same;
}

static ProtobufCMessage *parse_ok(const ProtobufCMessageDescriptor *d, const char *text) {
  ProtobufCMessage *m = NULL;
  int rc = cg_text_parse(d, text, strlen(text), "t", &m);
  CHECK_MSG(rc == 0, "parse failed: %s\n--- text:\n%s", cg_error_message(), text);
  return m;
}

/* Parses text that must fail; the message must contain every given piece. */
static void parse_fails(const ProtobufCMessageDescriptor *d, const char *text, const char *want1, const char *want2) {
  ProtobufCMessage *m = (ProtobufCMessage *)1;
  int rc = cg_text_parse(d, text, strlen(text), "t", &m);
  CHECK_MSG(rc == CG_ERR_PARSE, "expected a parse error for:\n%s", text);
  CHECK(m == NULL);
  if (rc == 0) free_msg(m);
  CHECK_STR_CONTAINS(cg_error_message(), want1);
  if (want2) CHECK_STR_CONTAINS(cg_error_message(), want2);
}

/* print -> parse gives the same message, byte for byte. */
static void check_round_trip(const ProtobufCMessage *m, const char *what) {
  char *text = cg_text_print(m);
  CHECK_MSG(text != NULL, "print failed for %s", what);
  if (!text) return;
  ProtobufCMessage *again = NULL;
  int rc = cg_text_parse(m->descriptor, text, strlen(text), what, &again);
  CHECK_MSG(rc == 0, "reparse of printed %s failed: %s", what, cg_error_message());
  CHECK_MSG(same_bytes(m, again), "round trip changed %s:\n%s", what, text);
  free_msg(again);
  free(text);
}

/* ---- every reference prototxt ---- */

static int is_solver_file(const char *name) { return strstr(name, "solver") != NULL; }

static void check_reference_file(const char *path, const char *name) {
  const ProtobufCMessageDescriptor *d = is_solver_file(name) ? SOLVER_DESC : NET_DESC;
  ProtobufCMessage *m = NULL;
  int rc = cg_text_parse_file(d, path, &m);
  CHECK_MSG(rc == 0, "%s: %s", path, cg_error_message());
  if (m) check_round_trip(m, path);
  free_msg(m);
  if (d == NET_DESC) {
    Caffe__NetParameter *net = NULL;
    CHECK_MSG(cg_read_net_text(path, &net) == 0, "%s: %s", path, cg_error_message());
    free_msg(net);
  } else {
    Caffe__SolverParameter *s = NULL;
    CHECK_MSG(cg_read_solver_text(path, &s) == 0, "%s: %s", path, cg_error_message());
    free_msg(s);
  }
}

static int walk_prototxt(const char *dir) {
  int found = 0;
  DIR *dp = opendir(dir);
  if (!dp) return 0;
  struct dirent *e;
  while ((e = readdir(dp))) {
    if (e->d_name[0] == '.') continue;
    char path[2048];
    path_in(path, sizeof path, dir, e->d_name);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      found += walk_prototxt(path);
    } else {
      size_t n = strlen(e->d_name);
      if (n > 9 && strcmp(e->d_name + n - 9, ".prototxt") == 0) {
        check_reference_file(path, e->d_name);
        found++;
      }
    }
  }
  closedir(dp);
  return found;
}

static void test_reference_prototxts(void) {
  int found = walk_prototxt(data_dir);
  /* the 5 that ship in tests/fixtures, and lenet_yuvval's 2 where ../shared/data is beside */
  char yuvval[2048];
  path_in(yuvval, sizeof yuvval, data_dir, "lenet_yuvval");
  int expected = 5 + (access(yuvval, F_OK) == 0 ? 2 : 0);
  CHECK_MSG(found >= expected, "only %d prototxt files under %s (expected %d)", found, data_dir, expected);

  char path[2048];
  path_in(path, sizeof path, data_dir, "bvlc_mnist_prototxt/lenet_train_test.prototxt");
  Caffe__NetParameter *net = NULL;
  CHECK(cg_read_net_text(path, &net) == 0);
  if (net) {
    CHECK_EQ_INT(net->n_layer, 11);
    CHECK(strcmp(net->name, "LeNet") == 0);
    Caffe__LayerParameter *data = net->layer[0], *conv1 = net->layer[2];
    CHECK(strcmp(data->type, "Data") == 0);
    CHECK(data->include[0]->has_phase && data->include[0]->phase == CAFFE__PHASE__TRAIN);
    CHECK_NEAR(data->transform_param->scale, 0.00390625, 0);
    CHECK(data->data_param->backend == CAFFE__DATA_PARAMETER__DB__LMDB);
    CHECK_EQ_INT(data->data_param->batch_size, 64);
    CHECK(strcmp(conv1->name, "conv1") == 0 && strcmp(conv1->type, "Convolution") == 0);
    CHECK_EQ_INT(conv1->n_param, 2);
    CHECK_NEAR(conv1->param[1]->lr_mult, 2, 0);
    CHECK_NEAR(conv1->param[0]->decay_mult, 1, 0); /* default */
    CHECK_EQ_INT(conv1->convolution_param->num_output, 20);
    CHECK_EQ_INT(conv1->convolution_param->kernel_size[0], 5);
    CHECK(strcmp(conv1->convolution_param->weight_filler->type, "xavier") == 0);
    CHECK(conv1->convolution_param->bias_term); /* default true */
  }
  free_msg(net);

  if (test_data_present(__func__, "caffe_ref/lenet_yuvval/lenet_solver.prototxt", NULL)) {
    path_in(path, sizeof path, data_dir, "lenet_yuvval/lenet_solver.prototxt");
    Caffe__SolverParameter *s = NULL;
    CHECK(cg_read_solver_text(path, &s) == 0);
    if (s) {
      CHECK(strcmp(s->type, "SGD") == 0);
      CHECK(!s->has_solver_type);
      CHECK_NEAR(s->base_lr, 0.001, 1e-9);
      CHECK_EQ_INT(s->max_iter, 10000);
      CHECK_EQ_INT(s->test_iter[0], 100);
      CHECK(strcmp(s->lr_policy, "inv") == 0);
      CHECK(s->solver_mode == CAFFE__SOLVER_PARAMETER__SOLVER_MODE__GPU);
      CHECK(strcmp(s->snapshot_prefix, "examples/mnist/lenet") == 0);
    }
    free_msg(s);
  }
}

/* ---- syntax ---- */

static void test_syntax(void) {
  const char *text =
      "# comment line\n"
      "name: 'a\\'b' \"\\n\\t\\\\\\\"\" \"\\101\\x42\\u00e9\" ; force_backward: True,\n"
      "input_shape < dim: [1, 2, 3] dim: 0x10 dim: 010 >\n"
      "input_shape: { dim: -9223372036854775808 dim: 9223372036854775807 }\n"
      "input_shape {}\n"
      "state { phase: 0 level: -2147483648 stage: [] stage: [\"x\", 'y'] }\n"
      "debug_info: t\n"
      "layer {\n"
      "  name: \"conv\" type: \"Convolution\"  # trailing comment\n"
      "  loss_weight: [1e-8, .999, -inf, inf, 2.5f, 1E+3, -0]\n"
      "  propagate_down: [true, false, 1, 0, t, f, True, False]\n"
      "  param: [{ lr_mult: 1 }, < lr_mult: 2 decay_mult: 0 >]\n"
      "  convolution_param { num_output: 4294967295 kernel_size: 3 engine: 2 axis: -1 }\n"
      "  pooling_param { pool: AVE }\n"
      "  clip_param { min: -1 max: 1 }\n"
      "}\n";
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(NET_DESC, text);
  if (!net) return;
  CHECK(strcmp(net->name, "a'b\n\t\\\"AB\xc3\xa9") == 0);
  CHECK(net->has_force_backward && net->force_backward);
  CHECK(net->has_debug_info && net->debug_info);
  CHECK_EQ_INT(net->n_input_shape, 3);
  CHECK_EQ_INT(net->input_shape[0]->n_dim, 5);
  CHECK_EQ_INT(net->input_shape[0]->dim[2], 3);
  CHECK_EQ_INT(net->input_shape[0]->dim[3], 16);
  CHECK_EQ_INT(net->input_shape[0]->dim[4], 8);
  CHECK(net->input_shape[1]->dim[0] == INT64_MIN && net->input_shape[1]->dim[1] == INT64_MAX);
  CHECK_EQ_INT(net->input_shape[2]->n_dim, 0);
  CHECK(net->state->phase == CAFFE__PHASE__TRAIN && net->state->level == INT32_MIN);
  CHECK(net->state->n_stage == 2 && strcmp(net->state->stage[1], "y") == 0);
  Caffe__LayerParameter *l = net->layer[0];
  CHECK_EQ_INT(l->n_loss_weight, 7);
  CHECK_NEAR(l->loss_weight[0], 1e-8, 1e-15);
  CHECK_NEAR(l->loss_weight[1], 0.999, 1e-7);
  CHECK(isinf(l->loss_weight[2]) && l->loss_weight[2] < 0);
  CHECK(isinf(l->loss_weight[3]) && l->loss_weight[3] > 0);
  CHECK_NEAR(l->loss_weight[4], 2.5, 0);
  CHECK_NEAR(l->loss_weight[5], 1000, 0);
  CHECK_EQ_INT(l->n_propagate_down, 8);
  CHECK(l->propagate_down[0] && !l->propagate_down[1] && l->propagate_down[2] && !l->propagate_down[3]);
  CHECK(l->propagate_down[4] && !l->propagate_down[5] && l->propagate_down[6] && !l->propagate_down[7]);
  CHECK_EQ_INT(l->n_param, 2);
  CHECK(l->param[1]->has_decay_mult && l->param[1]->decay_mult == 0);
  CHECK(l->convolution_param->num_output == UINT32_MAX);
  CHECK(l->convolution_param->engine == CAFFE__CONVOLUTION_PARAMETER__ENGINE__CUDNN);
  CHECK_EQ_INT(l->convolution_param->axis, -1);
  CHECK(l->pooling_param->pool == CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE);
  CHECK_NEAR(l->clip_param->max, 1, 0);
  check_round_trip(&net->base, "syntax net");
  free_msg(net);

  /* nan survives a round trip; a bytes field keeps NUL and high bytes */
  Caffe__SolverParameter *s = (Caffe__SolverParameter *)parse_ok(SOLVER_DESC, "base_lr: nan delta: -NaN momentum: 1.5e-3");
  if (s) {
    CHECK(isnan(s->base_lr) && isnan(s->delta));
    CHECK_NEAR(s->momentum, 0.0015, 1e-9);
    check_round_trip(&s->base, "nan solver");
  }
  free_msg(s);
  Caffe__Datum *d = (Caffe__Datum *)parse_ok(&caffe__datum__descriptor,
                                             "data: \"\\000\\377a\\x7f\" \"\\n\" label: 3 float_data: [0.5, -1] encoded: 1");
  if (d) {
    CHECK(d->has_data && d->data.len == 5 && memcmp(d->data.data, "\0\377a\177\n", 5) == 0);
    CHECK(d->label == 3 && d->n_float_data == 2 && d->encoded);
    check_round_trip(&d->base, "datum");
  }
  free_msg(d);

  /* empty input is an empty message; the printer prints it as "" */
  ProtobufCMessage *empty = parse_ok(NET_DESC, "  # nothing\n");
  char *printed = empty ? cg_text_print(empty) : NULL;
  CHECK(printed && printed[0] == '\0');
  free(printed);
  free_msg(empty);
}

static void test_printer_layout(void) {
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(
      NET_DESC, "layer { name: \"c\" convolution_param { num_output: 20 weight_filler { type: \"xavier\" } } "
                "loss_weight: 0.1 } name: \"N\"");
  char *text = net ? cg_text_print(&net->base) : NULL;
  CHECK(text != NULL);
  if (text)
    CHECK_MSG(strcmp(text, "name: \"N\"\n"
                           "layer {\n"
                           "  name: \"c\"\n"
                           "  loss_weight: 0.1\n"
                           "  convolution_param {\n"
                           "    num_output: 20\n"
                           "    weight_filler {\n"
                           "      type: \"xavier\"\n"
                           "    }\n"
                           "  }\n"
                           "}\n") == 0,
              "unexpected layout:\n%s", text);
  free(text);
  free_msg(net);
}

/* ---- errors ---- */

static void test_errors(void) {
  parse_fails(NET_DESC, "layer {\n  name: \"c\"\n  convolution_param { kernal_size: 3 }\n}\n", "t:3:23:",
              "message 'caffe.ConvolutionParameter' has no field 'kernal_size'");
  parse_fails(NET_DESC, "layer {\n  kernal_size: 3\n}", "t:2:3:", "message 'caffe.LayerParameter' has no field 'kernal_size'");
  parse_fails(NET_DESC, "layer { convolution_param {\n num_output: \"abc\" } }", "t:2:14:",
              "field 'num_output' expects an unsigned integer, got '\"abc\"'");
  parse_fails(NET_DESC, "layer { loss_weight: x }", "t:1:22:", "field 'loss_weight' expects a number, got 'x'");
  parse_fails(NET_DESC, "name: 5", "t:1:7:", "field 'name' expects a quoted string, got '5'");
  parse_fails(NET_DESC, "force_backward: yes", "t:1:17:", "expects a boolean");
  parse_fails(NET_DESC, "layer { pooling_param { pool: MAXX } }", "t:1:31:", "no enum value 'MAXX'");
  parse_fails(NET_DESC, "layer { pooling_param { pool: MAXX } }", "MAX, AVE, STOCHASTIC", "caffe.PoolingParameter.PoolMethod");
  parse_fails(NET_DESC, "layer { pooling_param { pool: 7 } }", "t:1:31:", "no enum value '7'");
  parse_fails(NET_DESC, "layer { convolution_param { num_output: 4294967296 } }", "t:1:41:",
              "value '4294967296' is out of range for uint32 field 'num_output'");
  parse_fails(NET_DESC, "layer { convolution_param { num_output: -1 } }", "t:1:41:",
              "field 'num_output' expects an unsigned integer, got '-1'");
  parse_fails(NET_DESC, "layer { convolution_param { axis: -2147483649 } }", "t:1:35:", "out of range for int32 field 'axis'");
  parse_fails(NET_DESC, "input_shape { dim: 9223372036854775808 }", "t:1:20:", "out of range for int64 field 'dim'");
  parse_fails(NET_DESC, "input_shape { dim: 99999999999999999999999 }", "t:1:20:", "out of range");
  parse_fails(NET_DESC, "layer { convolution_param { num_output: 1.5 } }", "t:1:41:", "expects an unsigned integer, got '1.5'");
  parse_fails(NET_DESC, "layer { loss_weight: 1e39 }", "t:1:22:", "out of range for float field 'loss_weight'");
  parse_fails(NET_DESC, "layer { loss_weight: 1.2.3 }", "t:1:22:", "expects a number, got '1.2.3'");
  parse_fails(NET_DESC, "name: \"abc\nlayer {}", "t:1:7:", "unterminated string");
  parse_fails(NET_DESC, "name: 'abc", "t:1:7:", "unterminated string");
  parse_fails(NET_DESC, "name: \"a\\qb\"", "t:1:9:", "unknown escape '\\q'");
  parse_fails(NET_DESC, "layer {\n  name: \"a\"\n", "t:3:1:", "missing '}' to close field 'layer' opened at 1:7");
  parse_fails(NET_DESC, "layer { include { phase: TEST }", "missing '}'", "opened at 1:7");
  parse_fails(NET_DESC, "layer < name: \"a\" }", "t:1:19:", "unexpected '}'");
  parse_fails(NET_DESC, "name: \"a\" }", "t:1:11:", "unexpected '}'");
  parse_fails(NET_DESC, "name: \"a\"\nname: \"b\"", "t:2:1:", "field 'name' is not repeated but is given twice (first at 1:1)");
  parse_fails(NET_DESC, "state { level: 1 }\nstate { level: 2 }", "t:2:1:", "field 'state' is not repeated");
  parse_fails(NET_DESC, "layer: \"conv1\"", "t:1:8:", "field 'layer' is a message (caffe.LayerParameter)");
  parse_fails(NET_DESC, "layer { convolution_param { weight_filler: 3 } }", "t:1:44:",
              "field 'weight_filler' is a message (caffe.FillerParameter)");
  parse_fails(NET_DESC, "name \"x\"", "t:1:6:", "expected ':' after field 'name'");
  parse_fails(NET_DESC, "name: [\"x\"]", "t:1:7:", "field 'name' is not repeated");
  parse_fails(NET_DESC, "input: [\"a\", 3]", "t:1:14:", "expects a quoted string, got '3'");
  parse_fails(NET_DESC, "input: [\"a\" \"b\" 3]", "t:1:17:", "expected ',' or ']' in the list for field 'input' opened at 1:8");
  parse_fails(NET_DESC, "input: [\"a\"; \"b\"]", "t:1:12:", "expected ',' or ']'");
  parse_fails(NET_DESC, "layer { clip_param { min: 1 } }", "t:1:29:", "message 'caffe.ClipParameter' is missing required field 'max'");
  parse_fails(NET_DESC, "[ext.field]: 1", "t:1:1:", "not supported");
  parse_fails(NET_DESC, "name: \"a\" @", "t:1:11:", "unexpected character '@'");
  parse_fails(NET_DESC, "name: \"a\"\n\x01", "t:2:1:", "unexpected byte 0x01");
  parse_fails(NET_DESC, ": 3", "t:1:1:", "expected a field name");
  parse_fails(NET_DESC, "layer {\n  type: \"x\"\n  source_class: 'c'\n  bogus_param {}\n}", "t:4:3:", "'bogus_param'");

  ProtobufCMessage *m = (ProtobufCMessage *)1;
  CHECK(cg_text_parse_file(NET_DESC, "/nonexistent/dir/x.prototxt", &m) == CG_ERR_IO && m == NULL);
  CHECK_STR_CONTAINS(cg_error_message(), "cannot open '/nonexistent/dir/x.prototxt': No such file");
}

/* Every prefix and a few thousand byte flips of a real net either parse or fail
 * cleanly (ASan/UBSan watch for the rest). */
static void test_no_crash_on_damage(void) {
  char path[2048];
  path_in(path, sizeof path, data_dir, "bvlc_mnist_prototxt/lenet_train_test.prototxt");
  FILE *fp = fopen(path, "rb");
  CHECK(fp != NULL);
  if (!fp) return;
  char text[8192];
  size_t n = fread(text, 1, sizeof text, fp);
  fclose(fp);
  int parsed = 0, failed = 0;
  for (size_t len = 0; len <= n; len++) {
    ProtobufCMessage *m = NULL;
    if (cg_text_parse(NET_DESC, text, len, "prefix", &m) == 0) parsed++, free_msg(m);
    else failed++;
  }
  uint32_t seed = 12345;
  static const char junk[] = "{}<>[]:;,\"'\\#-.0123456789eExfinatrueTEST \n\t\x80\xff";
  for (int i = 0; i < 3000; i++) {
    char copy[8192];
    memcpy(copy, text, n);
    for (int k = 0; k < 3; k++) {
      seed = seed * 1664525u + 1013904223u;
      size_t at = (seed >> 8) % n;
      seed = seed * 1664525u + 1013904223u;
      copy[at] = junk[(seed >> 8) % (sizeof junk - 1)];
    }
    ProtobufCMessage *m = NULL;
    if (cg_text_parse(NET_DESC, copy, n, "flip", &m) == 0) {
      check_round_trip(m, "damaged net");
      free_msg(m);
    }
  }
  CHECK(parsed > 0 && failed > 0);
  /* deep nesting of a recursive schema is not possible with caffe.proto, but a
   * flood of brackets must still fail fast */
  size_t big = 200000;
  char *flood = malloc(big);
  if (flood) {
    for (size_t i = 0; i < big; i++) flood[i] = "layer {"[i % 7];
    ProtobufCMessage *m = NULL;
    CHECK(cg_text_parse(NET_DESC, flood, big, "flood", &m) == CG_ERR_PARSE);
    free(flood);
  }
}

/* ---- upgrades ---- */

static Caffe__NetParameter *read_net(const char *path) {
  Caffe__NetParameter *net = NULL;
  int rc = cg_read_net_text(path, &net);
  CHECK_MSG(rc == 0, "%s: %s", path, cg_error_message());
  return net;
}

static void test_v1_upgrade(void) {
  char path[2048];
  path_in(path, sizeof path, data_dir, "bvlc_mnist_prototxt/lenet_train_test.prototxt");
  Caffe__NetParameter *v2 = read_net(path), *v1 = read_net("tests/data/lenet_v1_train_test.prototxt");
  CHECK_MSG(same_bytes(v1, v2), "upgraded V1 LeNet differs from the V2 one");
  if (v1) {
    CHECK_EQ_INT(v1->n_layers, 0);
    CHECK_EQ_INT(v1->n_layer, 11);
    CHECK(strcmp(v1->layer[0]->type, "Data") == 0);
    CHECK(!v1->layer[0]->data_param->has_scale);
    CHECK_NEAR(v1->layer[0]->transform_param->scale, 0.00390625, 0);
    CHECK(strcmp(v1->layer[9]->type, "Accuracy") == 0);
    CHECK(strcmp(v1->layer[10]->type, "SoftmaxWithLoss") == 0);
    CHECK_NEAR(v1->layer[2]->param[1]->lr_mult, 2, 0);
  }
  free_msg(v1);
  free_msg(v2);

  /* input + input_dim become an Input layer named "input" at the front */
  path_in(path, sizeof path, data_dir, "bvlc_mnist_prototxt/lenet.prototxt");
  v2 = read_net(path);
  v1 = read_net("tests/data/lenet_v1_deploy.prototxt");
  if (v1 && v2 && v1->n_layer > 0) {
    Caffe__LayerParameter *in = v1->layer[0];
    CHECK(strcmp(in->name, "input") == 0 && strcmp(in->type, "Input") == 0);
    CHECK(in->n_top == 1 && strcmp(in->top[0], "data") == 0);
    CHECK(in->input_param && in->input_param->n_shape == 1 && in->input_param->shape[0]->n_dim == 4);
    CHECK_EQ_INT(v1->n_input + v1->n_input_dim + v1->n_input_shape, 0);
    free(in->name); /* the reference deploy file calls its Input layer "data" */
    in->name = malloc(5);
    if (in->name) memcpy(in->name, "data", 5);
    CHECK_MSG(same_bytes(v1, v2), "upgraded V1 deploy LeNet differs from the V2 one");
  } else {
    CHECK(0);
  }
  free_msg(v1);
  free_msg(v2);

  /* V1 param names, share modes and weight decays become param specs */
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(
      NET_DESC,
      "layers { name: 'ip' type: INNER_PRODUCT param: 'w' param: 'b' blob_share_mode: PERMISSIVE blobs_lr: 1 "
      "blobs_lr: 2 weight_decay: 1 weight_decay: 0 weight_decay: 5 loss_weight: 2 include { phase: TRAIN } "
      "inner_product_param { num_output: 3 } blobs { num: 1 } } "
      "layers { type: RELU relu_param { negative_slope: 0.1 } } layers { type: NONE } "
      "layers { type: SOFTMAX_LOSS loss_param { ignore_label: 4 } } "
      "layers { type: DATA image_data_param { mirror: true } data_param { mirror: true crop_size: 7 mean_file: 'm' } }");
  if (net && cg_upgrade_net(net, "t") == 0 && net->n_layer == 5) {
    Caffe__LayerParameter *ip = net->layer[0];
    CHECK(strcmp(ip->type, "InnerProduct") == 0 && strcmp(ip->name, "ip") == 0);
    CHECK_EQ_INT(ip->n_param, 3);
    CHECK(strcmp(ip->param[0]->name, "w") == 0 && strcmp(ip->param[1]->name, "b") == 0 && ip->param[2]->name == NULL);
    CHECK(ip->param[0]->has_share_mode && ip->param[0]->share_mode == CAFFE__PARAM_SPEC__DIM_CHECK_MODE__PERMISSIVE);
    CHECK(!ip->param[1]->has_share_mode);
    CHECK(ip->param[1]->lr_mult == 2 && ip->param[1]->decay_mult == 0 && ip->param[2]->decay_mult == 5);
    CHECK(!ip->param[2]->has_lr_mult);
    CHECK(ip->n_loss_weight == 1 && ip->loss_weight[0] == 2);
    CHECK(ip->n_include == 1 && ip->n_blobs == 1 && ip->inner_product_param->num_output == 3);
    CHECK(strcmp(net->layer[1]->type, "ReLU") == 0 && net->layer[1]->relu_param->negative_slope > 0.09f);
    CHECK(net->layer[2]->type && net->layer[2]->type[0] == '\0');
    CHECK(strcmp(net->layer[3]->type, "SoftmaxWithLoss") == 0 && net->layer[3]->loss_param->ignore_label == 4);
    Caffe__LayerParameter *data = net->layer[4];
    CHECK(data->transform_param && data->transform_param->mirror && data->transform_param->crop_size == 7);
    CHECK(data->transform_param->mean_file && strcmp(data->transform_param->mean_file, "m") == 0);
    CHECK(!data->data_param->has_mirror && !data->data_param->has_crop_size && !data->data_param->mean_file);
    CHECK(data->image_data_param->has_mirror); /* only the layer type's own block moves */
    check_round_trip(&net->base, "upgraded V1 net");
  } else {
    CHECK_MSG(0, "V1 upgrade failed: %s", cg_error_message());
  }
  free_msg(net);
}

static void test_upgrade_errors_and_rest(void) {
  Caffe__NetParameter *net = (Caffe__NetParameter *)parse_ok(NET_DESC, "layer { name: 'a' } layers { name: 'b' }");
  CHECK(net && cg_upgrade_net(net, "mixed.prototxt") == CG_ERR_PARSE);
  CHECK_STR_CONTAINS(cg_error_message(), "mixed.prototxt: net mixes 'layer'");
  free_msg(net);

  /* a V0 net in text: the parser stops at the V0 `layer` inside `layers` */
  char path[2048];
  path_in(path, sizeof path, tmp_dir, "v0.prototxt");
  FILE *fp = fopen(path, "w");
  if (fp) {
    fputs("name: 'old'\nlayers {\n  layer { name: 'conv1' type: 'conv' num_output: 2 }\n  bottom: 'data'\n}\n", fp);
    fclose(fp);
  }
  net = NULL;
  CHECK(cg_read_net_text(path, &net) == CG_ERR_UNSUPPORTED && net == NULL);
  CHECK_STR_CONTAINS(cg_error_message(), ":3:3:");
  CHECK_STR_CONTAINS(cg_error_message(), "V0 net");

  /* a V0 net in binary: field 1 of a `layers` entry */
  path_in(path, sizeof path, tmp_dir, "v0.caffemodel");
  fp = fopen(path, "wb");
  if (fp) {
    static const uint8_t v0[] = {0x12, 0x04, 0x0a, 0x02, 0x0a, 0x00};
    fwrite(v0, 1, sizeof v0, fp);
    fclose(fp);
  }
  ProtobufCMessage *m = NULL;
  CHECK(cg_read_binary(NET_DESC, path, &m) == CG_ERR_UNSUPPORTED && m == NULL);
  CHECK_STR_CONTAINS(cg_error_message(), "V0 layer definition");

  /* input + input_shape, and the counts checked */
  net = (Caffe__NetParameter *)parse_ok(NET_DESC, "input: 'a' input: 'b' input_shape { dim: 1 dim: 2 } "
                                                  "input_shape { dim: 3 } layer { name: 'x' }");
  if (net && cg_upgrade_net(net, "t") == 0) {
    CHECK_EQ_INT(net->n_layer, 2);
    Caffe__LayerParameter *in = net->layer[0];
    CHECK(in->n_top == 2 && strcmp(in->top[1], "b") == 0 && in->input_param->n_shape == 2);
    CHECK(in->input_param->shape[1]->n_dim == 1 && in->input_param->shape[1]->dim[0] == 3);
    CHECK(strcmp(net->layer[1]->name, "x") == 0);
    CHECK_EQ_INT(net->n_input + net->n_input_shape, 0);
  } else {
    CHECK(0);
  }
  free_msg(net);
  net = (Caffe__NetParameter *)parse_ok(NET_DESC, "input: 'a' input_dim: 1 input_dim: 2");
  CHECK(net && cg_upgrade_net(net, "t") == CG_ERR_PARSE);
  CHECK_STR_CONTAINS(cg_error_message(), "t: net has 1 'input' but 2 'input_dim'");
  free_msg(net);
  net = (Caffe__NetParameter *)parse_ok(NET_DESC, "input: 'a' layer { name: 'x' }"); /* old caffemodel style */
  CHECK(net && cg_upgrade_net(net, "t") == 0 && net->n_input == 0 && net->n_layer == 1);
  free_msg(net);

  /* BatchNorm with three param specs gets them frozen; other counts are left */
  net = (Caffe__NetParameter *)parse_ok(NET_DESC, "layer { type: 'BatchNorm' param { lr_mult: 1 } param { lr_mult: 1 } "
                                                  "param { lr_mult: 1 decay_mult: 2 } } "
                                                  "layer { type: 'BatchNorm' param { lr_mult: 1 } }");
  if (net && cg_upgrade_net(net, "t") == 0) {
    for (int k = 0; k < 3; k++) CHECK(net->layer[0]->param[k]->lr_mult == 0 && net->layer[0]->param[k]->decay_mult == 0);
    CHECK(net->layer[1]->param[0]->lr_mult == 1);
  } else {
    CHECK(0);
  }
  free_msg(net);

  /* solvers */
  static const struct {
    const char *text, *type;
  } solvers[] = {{"solver_type: SGD", "SGD"},           {"solver_type: NESTEROV", "Nesterov"},
                 {"solver_type: ADAGRAD", "AdaGrad"},   {"solver_type: RMSPROP", "RMSProp"},
                 {"solver_type: ADADELTA", "AdaDelta"}, {"solver_type: ADAM", "Adam"},
                 {"type: 'Adam' solver_type: ADAM", "Adam"}, {"type: 'RMSProp'", "RMSProp"},
                 {"", "SGD"}};
  for (size_t i = 0; i < sizeof solvers / sizeof solvers[0]; i++) {
    Caffe__SolverParameter *s = (Caffe__SolverParameter *)parse_ok(SOLVER_DESC, solvers[i].text);
    CHECK(s && cg_upgrade_solver(s, "t") == 0);
    if (s) CHECK_MSG(strcmp(s->type, solvers[i].type) == 0 && !s->has_solver_type, "%s", solvers[i].text);
    free_msg(s);
  }
  Caffe__SolverParameter *s = (Caffe__SolverParameter *)parse_ok(SOLVER_DESC, "type: 'SGD' solver_type: ADAM");
  CHECK(s && cg_upgrade_solver(s, "sol.prototxt") == CG_ERR_PARSE);
  CHECK_STR_CONTAINS(cg_error_message(), "sol.prototxt: solver_type (Adam) and type (\"SGD\") disagree");
  free_msg(s);
  s = (Caffe__SolverParameter *)parse_ok(SOLVER_DESC, "net_param { layers { type: CONVOLUTION } input: 'd' input_dim: [1,1,1,1] }");
  CHECK(s && cg_upgrade_solver(s, "t") == 0);
  if (s) CHECK(s->net_param->n_layer == 2 && strcmp(s->net_param->layer[1]->type, "Convolution") == 0);
  free_msg(s);

  /* snapshot_prefix defaults as in Caffe */
  path_in(path, sizeof path, tmp_dir, "my_solver.prototxt");
  fp = fopen(path, "w");
  if (fp) fputs("base_lr: 0.1\n", fp), fclose(fp);
  s = NULL;
  CHECK(cg_read_solver_text(path, &s) == 0);
  char want[2048];
  path_in(want, sizeof want, tmp_dir, "my_solver");
  CHECK(s && s->snapshot_prefix && strcmp(s->snapshot_prefix, want) == 0);
  free_msg(s);
  fp = fopen(path, "w");
  if (fp) fprintf(fp, "snapshot_prefix: '%s/'\n", tmp_dir), fclose(fp);
  s = NULL;
  CHECK(cg_read_solver_text(path, &s) == 0);
  CHECK(s && s->snapshot_prefix && strcmp(s->snapshot_prefix, want) == 0);
  free_msg(s);
}

static void test_caffe_on_spark(void) {
  Caffe__NetParameter *net = read_net("tests/data/cos_lenet_memory.prototxt");
  if (!net) return;
  CHECK_EQ_INT(net->n_layer, 3);
  Caffe__LayerParameter *mem = net->layer[0], *cos = net->layer[1];
  CHECK(strcmp(mem->source_class, "com.yahoo.ml.caffe.LMDB") == 0);
  CHECK(strcmp(mem->memory_data_param->source, "file:///tmp/mnist_train_lmdb/") == 0);
  CHECK(mem->memory_data_param->has_share_in_parallel && !mem->memory_data_param->share_in_parallel);
  CHECK(mem->memory_data_param->batch_size == 64 && mem->memory_data_param->n_dataframe_column_select == 1);
  CHECK(cos->cos_data_param && cos->cos_data_param->n_top == 2);
  CHECK(cos->cos_data_param->top[0]->type == CAFFE__CO_SDATA_PARAMETER__DATA_TYPE__RAW_IMAGE);
  CHECK(cos->cos_data_param->top[0]->sample_num_axes == 3); /* default */
  CHECK(cos->cos_data_param->top[1]->transpose && cos->cos_data_param->top[1]->sample_num_axes == 1);
  check_round_trip(&net->base, "CaffeOnSpark net");
  free_msg(net);
}

/* ---- binary files ---- */

static void test_binary(void) {
  char path[2048], tmp[2048];
  path_in(path, sizeof path, data_dir, "lenet_nandahkrishna/lenet_iter_10000.caffemodel");
  ProtobufCMessage *m = NULL;
  CHECK_MSG(cg_read_binary(NET_DESC, path, &m) == 0, "%s", cg_error_message());
  Caffe__NetParameter *net = (Caffe__NetParameter *)m;
  if (net) {
    CHECK_EQ_INT(net->n_layer, 9);
    Caffe__LayerParameter *conv1 = NULL;
    for (size_t i = 0; i < net->n_layer; i++)
      if (net->layer[i]->name && strcmp(net->layer[i]->name, "conv1") == 0) conv1 = net->layer[i];
    CHECK(conv1 && conv1->n_blobs == 2);
    if (conv1 && conv1->n_blobs == 2) {
      Caffe__BlobProto *w = conv1->blobs[0];
      CHECK(w->shape && w->shape->n_dim == 4);
      if (w->shape && w->shape->n_dim == 4)
        CHECK(w->shape->dim[0] == 20 && w->shape->dim[1] == 1 && w->shape->dim[2] == 5 && w->shape->dim[3] == 5);
      CHECK_EQ_INT(w->n_data, 500);
      CHECK_EQ_INT(conv1->blobs[1]->n_data, 20);
    }
    char *text = cg_text_print(m);
    CHECK(text && strstr(text, "name: \"conv1\""));
    free(text);
  }

  /* a truncated copy is refused with the file named */
  FILE *in = fopen(path, "rb");
  path_in(tmp, sizeof tmp, tmp_dir, "half.caffemodel");
  FILE *out = fopen(tmp, "wb");
  if (in && out) {
    char buf[4096];
    size_t total = 0, got;
    while (total < 800000 && (got = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, got, out), total += got;
  }
  if (in) fclose(in);
  if (out) fclose(out);
  ProtobufCMessage *bad = (ProtobufCMessage *)1;
  CHECK(cg_read_binary(NET_DESC, tmp, &bad) == CG_ERR_CORRUPT && bad == NULL);
  CHECK_STR_CONTAINS(cg_error_message(), "half.caffemodel' is truncated or not a caffe.NetParameter");
  path_in(tmp, sizeof tmp, tmp_dir, "empty.caffemodel");
  out = fopen(tmp, "wb");
  if (out) fclose(out);
  CHECK(cg_read_binary(NET_DESC, tmp, &bad) == CG_ERR_CORRUPT);
  CHECK_STR_CONTAINS(cg_error_message(), "empty.caffemodel' is empty, not a caffe.NetParameter");
  CHECK(cg_read_binary(NET_DESC, "/nonexistent/x.caffemodel", &bad) == CG_ERR_IO);
  CHECK_STR_CONTAINS(cg_error_message(), "cannot open '/nonexistent/x.caffemodel'");
  /* a prototxt is not a binary net */
  path_in(tmp, sizeof tmp, data_dir, "bvlc_mnist_prototxt/lenet_solver.prototxt");
  CHECK(cg_read_binary(NET_DESC, tmp, &bad) != 0);

  /* atomic write, then read back the same bytes; no temporary file left */
  if (m) {
    path_in(tmp, sizeof tmp, tmp_dir, "copy.caffemodel");
    CHECK_MSG(cg_write_binary_atomic(m, tmp) == 0, "%s", cg_error_message());
    ProtobufCMessage *back = NULL;
    CHECK(cg_read_binary(NET_DESC, tmp, &back) == 0);
    CHECK(same_bytes(m, back));
    free_msg(back);
    CHECK_MSG(cg_write_binary_atomic(m, tmp) == 0, "overwrite: %s", cg_error_message()); /* replaces */
    DIR *d = opendir(tmp_dir); /* no copy.caffemodel.tmp.<pid>.<n> left */
    int leftovers = 0;
    for (struct dirent *e; d && (e = readdir(d));) leftovers += strncmp(e->d_name, "copy.caffemodel.tmp.", 20) == 0;
    if (d) closedir(d);
    CHECK_EQ_INT(leftovers, 0);
    CHECK(cg_write_binary_atomic(m, "/nonexistent/dir/x.caffemodel") == CG_ERR_IO);
    CHECK_STR_CONTAINS(cg_error_message(), "/nonexistent/dir/x.caffemodel");
    CHECK(access("/nonexistent/dir/x.caffemodel", F_OK) != 0);
  }
  free_msg(m);

  if (test_data_present(__func__, "caffe_ref/lenet_yuvval/lenet_iter_10000.solverstate", NULL)) {
    path_in(path, sizeof path, data_dir, "lenet_yuvval/lenet_iter_10000.solverstate");
    m = NULL;
    CHECK_MSG(cg_read_binary(&caffe__solver_state__descriptor, path, &m) == 0, "%s", cg_error_message());
    Caffe__SolverState *state = (Caffe__SolverState *)m;
    if (state) {
      CHECK_EQ_INT(state->iter, 10000);
      CHECK_EQ_INT(state->n_history, 8);
      CHECK_EQ_INT(state->history[0]->n_data, 500); /* conv1 weight momentum */
      path_in(tmp, sizeof tmp, tmp_dir, "copy.solverstate");
      CHECK(cg_write_binary_atomic(m, tmp) == 0);
      ProtobufCMessage *back = NULL;
      CHECK(cg_read_binary(&caffe__solver_state__descriptor, tmp, &back) == 0 && same_bytes(m, back));
      free_msg(back);
    }
    free_msg(m);
  }

  if (test_data_present(__func__, "caffe_ref/lmdb_jnulzl_32x32/coiss384Mean.binaryproto", NULL)) {
    path_in(path, sizeof path, data_dir, "lmdb_jnulzl_32x32/coiss384Mean.binaryproto");
    m = NULL;
    CHECK_MSG(cg_read_binary(&caffe__blob_proto__descriptor, path, &m) == 0, "%s", cg_error_message());
    Caffe__BlobProto *mean = (Caffe__BlobProto *)m;
    if (mean) CHECK(mean->n_data > 0);
    free_msg(m);
  }
}

static void remove_tmp_dir(void) {
  DIR *dp = opendir(tmp_dir);
  if (!dp) return;
  struct dirent *e;
  while ((e = readdir(dp))) {
    if (e->d_name[0] == '.') continue;
    char path[2048];
    path_in(path, sizeof path, tmp_dir, e->d_name);
    remove(path);
  }
  closedir(dp);
  rmdir(tmp_dir);
}

int main(void) {
  const char *shared = getenv("SHARED_DATA");
  snprintf(data_dir, sizeof data_dir, "%s/caffe_ref", shared && *shared ? shared : "../shared/data");
  const char *t = getenv("TMPDIR");
  snprintf(tmp_dir, sizeof tmp_dir, "%s/cg_test_proto.XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_reference_prototxts();
  test_syntax();
  test_printer_layout();
  test_errors();
  test_no_crash_on_damage();
  test_v1_upgrade();
  test_upgrade_errors_and_rest();
  test_caffe_on_spark();
  test_binary();
  remove_tmp_dir();
  return CHECK_REPORT();
}
