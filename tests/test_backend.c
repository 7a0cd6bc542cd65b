/* Math backends chosen per net (cg_net_options.backend): two nets of one process on
 * different kernels compute the same outputs, each layer holds its net's backend,
 * Convolution uses the backend's kernels only where asked, and an unknown backend
 * is refused by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/net.h"
#include "caffegrid/runtime.h"
#include "check.h"
#include "core/net_impl.h"
#include "layers/conv_common.h"
#include "math/backend.h"

static const char net_text[] =
    "name: 'small' "
    "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 2 dim: 1 dim: 16 dim: 16 } } } "
    "layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'conv1' convolution_param { num_output: 4 "
    "kernel_size: 5 weight_filler { type: 'xavier' } bias_filler { type: 'constant' value: 0.1 } } } "
    "layer { name: 'conv2' type: 'Convolution' bottom: 'conv1' top: 'conv2' convolution_param { num_output: 6 "
    "kernel_size: 3 pad: 1 weight_filler { type: 'xavier' } bias_filler { type: 'constant' value: 0.1 } } } "
    "layer { name: 'ip' type: 'InnerProduct' bottom: 'conv2' top: 'ip' inner_product_param { num_output: 10 "
    "weight_filler { type: 'xavier' } } }";

static char net_path[] = "/tmp/cg_test_backend_XXXXXX";

static cg_net *build(cg_backend_options backend) {
  cg_net_options o = {.phase = 1, .world_size = 1, .seed = 7, .source_name = net_path, .backend = backend};
  cg_net *net = NULL;
  int rc = cg_net_create_from_file(net_path, &o, &net);
  CHECK_MSG(rc == 0, "building on backend conv %d gemm %d: %s", backend.conv, backend.gemm, cg_error_message());
  return net;
}

static const cg_conv_state *conv_state(const cg_net *net, const char *name) {
  for (int i = 0; i < net->num_layers; i++)
    if (strcmp(net->layers[i].layer.name, name) == 0) return net->layers[i].layer.priv;
  return NULL;
}

static void forward(cg_net *net) {
  cg_blob *data = cg_net_blob(net, "data");
  for (size_t i = 0; i < data->count; i++) data->data[i] = (float)((i * 7919) % 255) / 255.0f;
  CHECK_EQ_INT(cg_net_forward(net, NULL), 0);
}

static void test_two_backends_in_one_process(void) {
  cg_net *fast = build((cg_backend_options){.name = "cpu", .conv = CG_CONV_FAST, .gemm = CG_GEMM_ONEDNN});
  cg_net *ref = build((cg_backend_options){.conv = CG_CONV_GEMM, .gemm = CG_GEMM_OPENBLAS});
  if (!fast || !ref) goto done;
  CHECK(fast->backend != ref->backend);
  for (int i = 0; i < fast->num_layers; i++) {
    CHECK_MSG(fast->layers[i].layer.backend == fast->backend, "layer %d holds another backend than its net's", i);
    CHECK_MSG(ref->layers[i].layer.backend == ref->backend, "layer %d holds another backend than its net's", i);
  }
  CHECK(fast->backend->gemm == cg_cpu_gemm_onednn && ref->backend->gemm == cg_cpu_gemm_openblas);
  /* the fast net's convolutions run on its kernels (one input channel: the direct
   * kernel where the CPU has AVX2; then oneDNN), the reference net's on im2col + gemm */
  const cg_conv_state *f1 = conv_state(fast, "conv1"), *f2 = conv_state(fast, "conv2");
  const cg_conv_state *r1 = conv_state(ref, "conv1"), *r2 = conv_state(ref, "conv2");
  CHECK(f1 && f2 && r1 && r2);
  if (!f1 || !f2 || !r1 || !r2) goto done;
  CHECK_MSG(f1->kernel != NULL && f2->kernel == &cg_conv_kernel_onednn, "fast net's kernels: %s, %s",
            f1->kernel ? f1->kernel->name : "none", f2->kernel ? f2->kernel->name : "none");
  CHECK(r1->kernel == NULL && r2->kernel == NULL);
  forward(fast);
  forward(ref);
  cg_blob *a = cg_net_blob(fast, "ip"), *b = cg_net_blob(ref, "ip");
  double worst = 0, biggest = 0;
  for (size_t i = 0; i < a->count; i++) {
    double d = fabs((double)a->data[i] - b->data[i]);
    if (d > worst) worst = d;
    if (fabs(b->data[i]) > biggest) biggest = fabs(b->data[i]);
  }
  CHECK_MSG(biggest > 1e-3, "the outputs are all near zero (%g): the comparison says nothing", biggest);
  CHECK_MSG(worst < 1e-4 * (1 + biggest), "fast and reference backends differ by %g (outputs up to %g)", worst, biggest);
done:
  cg_net_free(fast);
  cg_net_free(ref);
}

/* zeroed options follow the process-wide choice at the time the net is built */
static void test_defaults_follow_the_runtime_choice(void) {
  cg_runtime_use_fast_conv(false);
  cg_runtime_use_openblas_gemm(true);
  cg_net *net = build((cg_backend_options){0});
  cg_runtime_use_fast_conv(true);
  cg_runtime_use_openblas_gemm(false);
  cg_net *fast = build((cg_backend_options){0});
  if (net && fast) {
    CHECK(conv_state(net, "conv2")->kernel == NULL && net->backend->gemm == cg_cpu_gemm_openblas);
    CHECK(conv_state(fast, "conv2")->kernel != NULL && fast->backend->gemm == cg_cpu_gemm_onednn);
  }
  cg_net_free(net);
  cg_net_free(fast);
}

static void test_unknown_backend_is_refused(void) {
  cg_net_options o = {.phase = 1, .world_size = 1, .source_name = net_path, .backend = {.name = "cuda"}};
  cg_net *net = NULL;
  int rc = cg_net_create_from_file(net_path, &o, &net);
  CHECK(rc == CG_ERR_INVALID && net == NULL);
  CHECK_MSG(strstr(cg_error_message(), "unknown backend 'cuda'") && strstr(cg_error_message(), "cpu") &&
                strstr(cg_error_message(), net_path),
            "message: %s", cg_error_message());
  const char *const *names = cg_backend_names();
  CHECK(names[0] && strcmp(names[0], "cpu") == 0 && names[1] == NULL);
  o.backend = (cg_backend_options){.conv = (cg_conv_kernels)7};
  CHECK(cg_net_create_from_file(net_path, &o, &net) == CG_ERR_INVALID && net == NULL);
}

int main(void) {
  int fd = mkstemp(net_path);
  if (fd < 0 || write(fd, net_text, sizeof net_text - 1) != (ssize_t)(sizeof net_text - 1)) {
    perror("test_backend: temporary net");
    return 1;
  }
  close(fd);
  test_two_backends_in_one_process();
  test_defaults_follow_the_runtime_choice();
  test_unknown_backend_is_refused();
  unlink(net_path);
  return CHECK_REPORT();
}
