/* Fuzz target: net construction (cg_net_create: layer setup, shape inference,
 * parameter allocation, fillers) from a prototxt NetParameter with hostile shapes:
 * zero, negative, huge and overflowing dimensions. Layers that open files (Data,
 * ImageData, HDF5Data, HDF5Output, a mean_file) are skipped: this target is about
 * shapes. Allocations over 32 MB fail (return NULL) instead of aborting, so they
 * must surface as errors. The first byte picks TRAIN or TEST. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/net.h"
#include "core/net_proto.h"
#include "proto/text_format.h"
#include "proto/upgrade.h"

const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:max_allocation_size_mb=32"; }

static int reads_files(const Caffe__NetParameter *net) {
  static const char *const file_layers[] = {"Data", "ImageData", "HDF5Data", "HDF5Output", "WindowData"};
  for (size_t i = 0; i < net->n_layer; i++) {
    const Caffe__LayerParameter *l = net->layer[i];
    for (size_t k = 0; k < sizeof file_layers / sizeof *file_layers; k++)
      if (l->type && strcmp(l->type, file_layers[k]) == 0) return 1;
    if (l->transform_param && l->transform_param->mean_file) return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 8192) return 0;
  ProtobufCMessage *m = NULL;
  if (cg_text_parse(&caffe__net_parameter__descriptor, (const char *)data + 1, size - 1, "fuzz.prototxt", &m)) return 0;
  Caffe__NetParameter *param = (Caffe__NetParameter *)m;
  if (cg_upgrade_net(param, "fuzz.prototxt") == 0 && !reads_files(param) && param->n_layer <= 64) {
    cg_net_options opt = {.phase = data[0] & 1, .world_size = 1, .seed = 1, .source_name = "fuzz.prototxt"};
    cg_net *net = NULL;
    if (cg_net_create(param, &opt, &net) == 0) cg_net_free(net);
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}
