/* Model files across tools: weights saved and reloaded are bit-identical; a
 * .caffemodel we write decodes with Google's protoc into exactly the message our
 * reader sees; a real BVLC Caffe solverstate resumes with its momentum history;
 * a solverstate from another net is refused. Needs SHARED_DATA and CAFFEGRID. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "caffegrid/net.h"
#include "caffegrid/solver.h"
#include "check.h"
#include "test_data.h"
#include "proto/proto_io.h"
#include "proto/text_format.h"

static char shared[1024], tmpdir[] = "/tmp/cg_resume_XXXXXX";

static char *path_of(const char *fmt, const char *a) {
  static char buf[4][2048];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], fmt, a);
  return p;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static unsigned char *pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  unsigned char *buf = malloc(*len + 1);
  protobuf_c_message_pack(m, buf);
  return buf;
}

/* LeNet deploy-style net (Input instead of Data) so no LMDB is needed. */
static cg_net *lenet(void) {
  cg_net *net = NULL;
  cg_net_options o = {.phase = 1, .world_size = 1, .seed = 5};
  int rc = cg_net_create_from_file(path_of("%s/caffe_ref/bvlc_mnist_prototxt/lenet.prototxt", shared), &o, &net);
  CHECK_MSG(rc == 0, "lenet: %s", cg_error_message());
  return net;
}

static void test_weights_round_trip(void) {
  const char *model = path_of("%s/caffe_ref/lenet_nandahkrishna/lenet_iter_10000.caffemodel", shared);
  cg_net *a = lenet(), *b = lenet();
  if (!a || !b) return;
  CHECK_EQ_INT(cg_net_load_weights(a, model), 0);
  char *saved = path_of("%s/saved.caffemodel", tmpdir), *again = path_of("%s/again.caffemodel", tmpdir);
  CHECK_EQ_INT(cg_net_save_weights(a, saved), 0);
  CHECK_EQ_INT(cg_net_load_weights(b, saved), 0);
  CHECK_EQ_INT(cg_net_param_count(a), 431080);
  CHECK(memcmp(cg_net_param_data(a), cg_net_param_data(b), cg_net_param_count(a) * sizeof(float)) == 0);
  CHECK_EQ_INT(cg_net_save_weights(b, again), 0);
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "cmp -s %s %s", saved, again);
  CHECK_MSG(system(cmd) == 0, "saving the reloaded weights gives the same bytes");

  /* protoc, reading proto/caffe.proto, decodes our file; our parser reads protoc's text; same message. */
  char text[2100];
  snprintf(text, sizeof text, "%s/decoded.txt", tmpdir);
  snprintf(cmd, sizeof cmd, "protoc -Iproto -I/usr/include --decode=caffe.NetParameter proto/caffe.proto < %s > %s", saved, text);
  CHECK_MSG(system(cmd) == 0, "protoc decodes our .caffemodel");
  ProtobufCMessage *from_text = NULL, *from_binary = NULL;
  CHECK_EQ_INT(cg_text_parse_file(&caffe__net_parameter__descriptor, text, &from_text), 0);
  CHECK_EQ_INT(cg_read_binary(&caffe__net_parameter__descriptor, saved, &from_binary), 0);
  if (from_text && from_binary) {
    size_t la, lb;
    unsigned char *pa = pack(from_text, &la), *pb = pack(from_binary, &lb);
    CHECK_MSG(la == lb && memcmp(pa, pb, la) == 0, "protoc's decode and ours agree on every field (%zu vs %zu bytes)", la, lb);
    free(pa);
    free(pb);
    Caffe__NetParameter *n = (Caffe__NetParameter *)from_text;
    CHECK_EQ_INT(n->n_layer, 9);
  }
  if (from_text) protobuf_c_message_free_unpacked(from_text, NULL);
  if (from_binary) protobuf_c_message_free_unpacked(from_binary, NULL);
  cg_net_free(a);
  cg_net_free(b);
}

/* With base_lr 0 the step is momentum * history alone: the weights after one
 * iteration show whether Caffe's saved history was used. */
static void test_caffe_snapshot(void) {
  NEED_DATA("caffe_ref/lenet_yuvval/lenet_train_test.prototxt", "caffe_ref/lenet_yuvval/lenet_iter_10000.solverstate");
  char lmdb[2100], cmd[4400];
  snprintf(lmdb, sizeof lmdb, "%s/examples/mnist/mnist_train_lmdb", tmpdir);
  snprintf(cmd, sizeof cmd, "mkdir -p %s/examples/mnist && %s convert mnist %s/mnist/t10k-images-idx3-ubyte.gz %s/mnist/t10k-labels-idx1-ubyte.gz %s 2>/dev/null",
           tmpdir, getenv("CAFFEGRID"), shared, shared, lmdb);
  CHECK_MSG(system(cmd) == 0, "convert mnist");
  char *solver = path_of("%s/momentum_solver.prototxt", tmpdir);
  char text[2048];
  snprintf(text, sizeof text,
           "net: '%s/caffe_ref/lenet_yuvval/lenet_train_test.prototxt' base_lr: 0 lr_policy: 'fixed' momentum: 0.9 "
           "weight_decay: 0 max_iter: 10001 display: 0 random_seed: 3 snapshot_after_train: false",
           shared);
  write_file(solver, text);
  char cwd[2048];
  if (!getcwd(cwd, sizeof cwd) || chdir(tmpdir) != 0) return;
  cg_solver *s = NULL;
  cg_solver_options o = {.world_size = 1, .no_metrics = true};
  int rc = cg_solver_create_from_file(solver, &o, &s);
  CHECK_MSG(rc == 0, "solver: %s", cg_error_message());
  const char *state_path = path_of("%s/caffe_ref/lenet_yuvval/lenet_iter_10000.solverstate", shared);
  if (!rc) rc = cg_solver_restore(s, state_path);
  CHECK_MSG(rc == 0, "restore: %s", cg_error_message());
  if (!rc) {
    CHECK_EQ_INT(cg_solver_iter(s), 10000);
    ProtobufCMessage *m = NULL;
    CHECK_EQ_INT(cg_read_binary(&caffe__solver_state__descriptor, state_path, &m), 0);
    Caffe__SolverState *st = (Caffe__SolverState *)m;
    cg_net *net = cg_solver_net(s);
    size_t n = cg_net_param_count(net);
    float *before = malloc(n * sizeof(float));
    memcpy(before, cg_net_param_data(net), n * sizeof(float));
    CHECK_EQ_INT(cg_solver_step(s, 1), 0);
    CHECK_EQ_INT(cg_solver_iter(s), 10001);
    size_t offset = 0, mismatches = 0, nonzero = 0;
    for (size_t k = 0; k < st->n_history; k++)
      for (size_t i = 0; i < st->history[k]->n_data; i++, offset++) {
        float expected = before[offset] - 0.9f * st->history[k]->data[i];
        if (expected != cg_net_param_data(net)[offset]) mismatches++;
        if (st->history[k]->data[i] != 0) nonzero++;
      }
    CHECK_EQ_INT(offset, n);
    CHECK_MSG(mismatches == 0, "%zu weights did not move by momentum * Caffe's history", mismatches);
    CHECK_MSG(nonzero > 1000, "Caffe's history is non-trivial (%zu non-zero)", nonzero);
    free(before);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cg_solver_free(s);

  /* a solverstate from another net */
  write_file("tiny.prototxt",
             "layer { name: 'x' type: 'DummyData' top: 'x' top: 't' dummy_data_param { shape { dim: 1 dim: 2 } "
             "shape { dim: 1 dim: 1 } } }\n"
             "layer { name: 'ip' type: 'InnerProduct' bottom: 'x' top: 'y' inner_product_param { num_output: 1 } }\n"
             "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'y' bottom: 't' top: 'loss' }\n");
  write_file("tiny_solver.prototxt", "net: 'tiny.prototxt' base_lr: 0.1 lr_policy: 'fixed' max_iter: 1");
  s = NULL;
  CHECK_EQ_INT(cg_solver_create_from_file("tiny_solver.prototxt", &o, &s), 0);
  if (s) {
    CHECK(cg_solver_restore(s, state_path) != 0);
    CHECK_STR_CONTAINS(cg_error_message(), "lenet_iter_10000.solverstate: field 'history' holds 8 blobs but this net");
  }
  cg_solver_free(s);
  if (chdir(cwd) != 0) fprintf(stderr, "cannot return to %s\n", cwd);
}

int main(void) {
  const char *sd = getenv("SHARED_DATA");
  snprintf(shared, sizeof shared, "%s", sd ? sd : "../shared/data");
  if (!getenv("CAFFEGRID")) setenv("CAFFEGRID", "build/caffegrid", 0);
  if (!mkdtemp(tmpdir)) return 1;
  test_weights_round_trip();
  test_caffe_snapshot();
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd)) fprintf(stderr, "cannot clean %s\n", tmpdir);
  return CHECK_REPORT();
}
