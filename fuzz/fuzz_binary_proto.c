/* Fuzz target: binary protobuf files through cg_parse_binary (what cg_read_binary
 * runs on a file's bytes): a .caffemodel (NetParameter, upgraded, then its weights
 * copied into a small net by layer name), a .solverstate, and a .binaryproto mean
 * file loaded through cg_transform_init. The first byte picks the kind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "caffegrid/net.h"
#include "core/net_proto.h"
#include "data/transform.h"
#include "fuzz_common.h"
#include "proto/proto_io.h"
#include "proto/text_format.h"
#include "proto/upgrade.h"

/* A net with a parameter blob of each common kind, under the layer names the
 * LeNet seeds use, so copied weights get as far as the shape checks. */
static const char net_text[] =
    "name: 'fuzz' layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 2 dim: 1 dim: 8 dim: 8 } } }"
    "layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'c1' convolution_param { num_output: 4 kernel_size: 3 } }"
    "layer { name: 'bn' type: 'BatchNorm' bottom: 'c1' top: 'c1' }"
    "layer { name: 'scale' type: 'Scale' bottom: 'c1' top: 'c1' scale_param { bias_term: true } }"
    "layer { name: 'relu' type: 'PReLU' bottom: 'c1' top: 'c1' }"
    "layer { name: 'ip1' type: 'InnerProduct' bottom: 'c1' top: 'ip1' inner_product_param { num_output: 5 } }"
    "layer { name: 'ip2' type: 'InnerProduct' bottom: 'ip1' top: 'ip2' inner_product_param { num_output: 3 bias_term: false } }";

static cg_net *target_net(void) {
  static cg_net *net;
  static Caffe__NetParameter *param;
  if (!net) {
    ProtobufCMessage *m = NULL;
    if (cg_text_parse(&caffe__net_parameter__descriptor, net_text, strlen(net_text), "fuzz_net", &m) ||
        cg_upgrade_net((Caffe__NetParameter *)m, "fuzz_net"))
      abort();
    param = (Caffe__NetParameter *)m;
    cg_net_options opt = {.phase = 1, .world_size = 1, .seed = 1};
    if (cg_net_create(param, &opt, &net)) {
      fprintf(stderr, "%s\n", cg_error_message());
      abort();
    }
  }
  return net;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int kind = data[0] % 3;
  data++, size--;
  if (kind == 0) {
    ProtobufCMessage *m = NULL;
    if (cg_parse_binary(&caffe__net_parameter__descriptor, data, size, "fuzz.caffemodel", &m)) return 0;
    (void)cg_net_copy_weights_from(target_net(), (Caffe__NetParameter *)m, "fuzz.caffemodel");
    protobuf_c_message_free_unpacked(m, NULL);
  } else if (kind == 1) {
    ProtobufCMessage *m = NULL;
    if (cg_parse_binary(&caffe__solver_state__descriptor, data, size, "fuzz.solverstate", &m)) return 0;
    protobuf_c_message_free_unpacked(m, NULL);
  } else {
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    Caffe__TransformationParameter tp = CAFFE__TRANSFORMATION_PARAMETER__INIT;
    tp.mean_file = path;
    cg_transform t = {0};
    if (cg_transform_init(&t, &tp, false) == 0) cg_transform_free(&t);
    close(fd);
  }
  return 0;
}
