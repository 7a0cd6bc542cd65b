/* Data-parallel equivalence over real Open MPI: N ranks with batch B train to
 * the same weights as 1 rank with batch N*B on the same data order (within 1e-5
 * relative after 50 iterations), for N = 2 and 4. The summation order of the
 * gradients necessarily differs (each rank sums its half, then the halves are
 * added); with ReLU and max pooling those 1e-8 rounding differences flip kinks
 * and grow chaotically (measured: 1e-8 after 5 iterations, 5e-4 after 50), so
 * the 50-iteration runs use LeNet with smooth units (TanH, average pooling),
 * and the standard LeNet is compared after 5 iterations. Needs CAFFEGRID and SHARED_DATA. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "check.h"
#include "proto/proto_io.h"

static char dir[] = "/tmp/cg_mpi_XXXXXX";

static void write_file(const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

/* LeNet, training layers only, reading the first records of MNIST t10k; smooth:
 * TanH and average pooling instead of ReLU and max pooling. */
static void write_net(const char *name, int batch, bool smooth) {
  char text[4096];
  snprintf(text, sizeof text,
           "name: 'LeNet'\n"
           "layer { name: 'mnist' type: 'Data' top: 'data' top: 'label' transform_param { scale: 0.00390625 }\n"
           "  data_param { source: 'mnist_lmdb' batch_size: %d backend: LMDB } }\n"
           "layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'conv1'\n"
           "  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: 'xavier' } } }\n"
           "layer { name: 'pool1' type: 'Pooling' bottom: 'conv1' top: 'pool1' pooling_param { pool: %s kernel_size: 2 stride: 2 } }\n"
           "layer { name: 'conv2' type: 'Convolution' bottom: 'pool1' top: 'conv2'\n"
           "  convolution_param { num_output: 50 kernel_size: 5 weight_filler { type: 'xavier' } } }\n"
           "layer { name: 'pool2' type: 'Pooling' bottom: 'conv2' top: 'pool2' pooling_param { pool: %s kernel_size: 2 stride: 2 } }\n"
           "layer { name: 'ip1' type: 'InnerProduct' bottom: 'pool2' top: 'ip1'\n"
           "  inner_product_param { num_output: 500 weight_filler { type: 'xavier' } } }\n"
           "layer { name: 'relu1' type: '%s' bottom: 'ip1' top: 'ip1' }\n"
           "layer { name: 'ip2' type: 'InnerProduct' bottom: 'ip1' top: 'ip2'\n"
           "  inner_product_param { num_output: 10 weight_filler { type: 'xavier' } } }\n"
           "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'ip2' bottom: 'label' top: 'loss' }\n",
           batch, smooth ? "AVE" : "MAX", smooth ? "AVE" : "MAX", smooth ? "TanH" : "ReLU");
  write_file(name, text);
}

/* snapshot_every 0: only the final snapshot */
static void write_solver(const char *name, const char *net, const char *prefix, int iterations, int snapshot_every) {
  char text[1024];
  snprintf(text, sizeof text,
           "net: '%s' base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005 lr_policy: 'inv' gamma: 0.0001 power: 0.75\n"
           "display: 0 max_iter: %d snapshot: %d snapshot_prefix: '%s' random_seed: 1701\n",
           net, iterations, snapshot_every, prefix);
  write_file(name, text);
}

static int run(const char *command) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "cd %s && . %s/tests/mpi_env.sh && %s > /dev/null 2>&1", dir, getenv("REPO"), command);
  return system(cmd);
}

static float *load(const char *name, size_t *n) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ProtobufCMessage *m = NULL;
  if (cg_read_binary(&caffe__net_parameter__descriptor, path, &m)) {
    fprintf(stderr, "%s\n", cg_error_message());
    return NULL;
  }
  Caffe__NetParameter *np = (Caffe__NetParameter *)m;
  size_t total = 0;
  for (size_t i = 0; i < np->n_layer; i++)
    for (size_t k = 0; k < np->layer[i]->n_blobs; k++) total += np->layer[i]->blobs[k]->n_data;
  float *w = malloc(total * sizeof(float));
  *n = 0;
  for (size_t i = 0; i < np->n_layer; i++)
    for (size_t k = 0; k < np->layer[i]->n_blobs; k++) {
      memcpy(w + *n, np->layer[i]->blobs[k]->data, np->layer[i]->blobs[k]->n_data * sizeof(float));
      *n += np->layer[i]->blobs[k]->n_data;
    }
  protobuf_c_message_free_unpacked(m, NULL);
  return w;
}

/* The largest |a-b| / (max(|a|, |b|) + 1e-2): relative for weights of normal size; weights
 * near zero (where float rounding alone is a large fraction) are measured against 1e-2. */
static double max_relative(const float *a, const float *b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / (fmax(fabs(a[i]), fabs(b[i])) + 1e-2));
  return worst;
}

/* ||a - b|| / ||a|| over all weights */
static double norm_relative(const float *a, const float *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) num += (double)(a[i] - b[i]) * (a[i] - b[i]), den += (double)a[i] * a[i];
  return sqrt(num / den);
}

int main(void) {
  const char *caffegrid = getenv("CAFFEGRID"), *shared = getenv("SHARED_DATA");
  char repo[1024];
  if (!caffegrid || !shared || !getcwd(repo, sizeof repo)) {
    fprintf(stderr, "needs CAFFEGRID and SHARED_DATA (run through tests/run_all.sh)\n");
    return 1;
  }
  setenv("REPO", repo, 1);
  if (!mkdtemp(dir)) return 1;
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s convert mnist %s/mnist/t10k-images-idx3-ubyte.gz %s/mnist/t10k-labels-idx1-ubyte.gz mnist_lmdb",
           caffegrid, shared, shared);
  CHECK_EQ_INT(run(cmd), 0);
  write_net("net128.prototxt", 128, true);
  write_net("net64.prototxt", 64, true);
  write_net("net32.prototxt", 32, true);
  write_net("relu128.prototxt", 128, false);
  write_net("relu64.prototxt", 64, false);
  write_solver("one.prototxt", "net128.prototxt", "one", 50, 0);
  write_solver("two.prototxt", "net64.prototxt", "two", 50, 0);
  write_solver("four.prototxt", "net32.prototxt", "four", 50, 0);
  write_solver("relu_one.prototxt", "relu128.prototxt", "relu_one", 5, 1);
  write_solver("relu_two.prototxt", "relu64.prototxt", "relu_two", 5, 1);
  const char *runs[] = {"%s train -solver one.prototxt", "mpirun -np 2 %s train -solver two.prototxt -clusterSize 2 -check_every 10",
                        "mpirun -np 4 %s train -solver four.prototxt -bucket_mb 1", "%s train -solver relu_one.prototxt",
                        "mpirun -np 2 %s train -solver relu_two.prototxt"};
  for (int i = 0; i < 5; i++) {
    snprintf(cmd, sizeof cmd, runs[i], caffegrid);
    CHECK_MSG(run(cmd) == 0, "%s", cmd);
  }
  /* ReLU and max pooling route gradients by comparisons: once the weights differ by
   * rounding (the two runs add the same terms in different orders), a near tie can
   * go the other way and move weights visibly (seen: 1e-7 at iterations 1-4, then up
   * to 3.5e-4 at iteration 5, norm-wise 2.6e-6). So that pair is compared element
   * by element after its first update, from identical weights, and as a whole after 5. */
  const struct {
    const char *a, *b, *what;
    bool elementwise;
  } pairs[] = {{"one_iter_50.caffemodel", "two_iter_50.caffemodel", "2 ranks x 64 vs 1 x 128, 50 iterations", true},
               {"one_iter_50.caffemodel", "four_iter_50.caffemodel", "4 ranks x 32 vs 1 x 128, 50 iterations", true},
               {"relu_one_iter_1.caffemodel", "relu_two_iter_1.caffemodel",
                "LeNet (ReLU, max pooling) 2 x 64 vs 1 x 128, 1 iteration", true},
               {"relu_one_iter_5.caffemodel", "relu_two_iter_5.caffemodel",
                "LeNet (ReLU, max pooling) 2 x 64 vs 1 x 128, 5 iterations", false}};
  for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
    size_t na = 0, nb = 0;
    float *a = load(pairs[p].a, &na), *b = load(pairs[p].b, &nb);
    CHECK_MSG(a && b && na == 431080 && nb == na, "%s: both models load", pairs[p].what);
    if (a && b && na == nb) {
      double d = max_relative(a, b, na), dn = norm_relative(a, b, na);
      printf("%s: max element relative difference %.3g, norm-wise %.3g\n", pairs[p].what, d, dn);
      if (pairs[p].elementwise) CHECK_MSG(d < 1e-5, "%s: elements differ by %.3g", pairs[p].what, d);
      CHECK_MSG(dn < 1e-5, "%s: norm-wise difference %.3g", pairs[p].what, dn);
    }
    free(a);
    free(b);
  }
  /* -clusterSize that disagrees with the launch */
  snprintf(cmd, sizeof cmd, "mpirun -np 2 %s train -solver two.prototxt -clusterSize 3", caffegrid);
  CHECK(run(cmd) != 0);
  if (getenv("KEEP")) return CHECK_REPORT();
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
  return CHECK_REPORT();
}
