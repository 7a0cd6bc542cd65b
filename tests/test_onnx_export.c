/* The ONNX exporter's structure, without an ONNX runtime (tests/python/test_onnx.py
 * runs the models in onnxruntime): every layer type the engine builds has an export
 * decision; a small net's model decodes with ONNX's field numbers into the expected
 * nodes, initializers, symbolic input and outputs; refusals name the layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/net.h"
#include "caffegrid/onnx.h"
#include "check.h"
#include "core/layer.h"
#include "export/onnx_export.h"
#include "proto/onnx.pb-c.h"

static char dir[] = "/tmp/cg_test_onnx_XXXXXX";

static void test_every_layer_type_has_a_decision(void) {
  for (int i = 0; i < cg_layer_table_size; i++) {
    const char *type = cg_layer_table[i]->type;
    const cg_onnx_layer_map *m = cg_onnx_layer_find(type);
    CHECK_MSG(m != NULL, "layer type %s has no ONNX export decision (map it, leave it out or refuse it)", type);
    if (m && m->kind == CG_ONNX_OP) CHECK_MSG(m->emit != NULL, "%s maps to operators but has no emitter", type);
  }
}

static cg_net *build(const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  cg_net_options o = {.phase = 1, .world_size = 1, .seed = 3};
  cg_net *net = NULL;
  CHECK_MSG(cg_net_create_from_file(path, &o, &net) == 0, "%s", cg_error_message());
  return net;
}

static Onnx__ModelProto *read_model(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static uint8_t bytes[1 << 20];
  size_t n = fread(bytes, 1, sizeof bytes, f);
  fclose(f);
  return onnx__model_proto__unpack(NULL, n, bytes);
}

static void test_small_net_decodes(void) {
  cg_net *net = build("small.prototxt",
                      "name: 'small' layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 4 dim: 1 "
                      "dim: 8 dim: 8 } } } "
                      "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv' convolution_param { "
                      "num_output: 3 kernel_size: 3 weight_filler { type: 'xavier' } } } "
                      "layer { name: 'relu' type: 'ReLU' bottom: 'conv' top: 'conv' } "
                      "layer { name: 'pool' type: 'Pooling' bottom: 'conv' top: 'pool' pooling_param { pool: MAX "
                      "kernel_size: 2 stride: 2 } } "
                      "layer { name: 'drop' type: 'Dropout' bottom: 'pool' top: 'pool' } "
                      "layer { name: 'ip' type: 'InnerProduct' bottom: 'pool' top: 'ip' inner_product_param { "
                      "num_output: 5 weight_filler { type: 'xavier' } } } "
                      "layer { name: 'prob' type: 'Softmax' bottom: 'ip' top: 'prob' }");
  if (!net) return;
  char path[256];
  snprintf(path, sizeof path, "%s/small.onnx", dir);
  cg_onnx_report report;
  CHECK_EQ_INT(cg_net_export_onnx(net, NULL, path, &report), 0);
  CHECK(report.num_outputs == 1 && strcmp(report.outputs[0], "prob") == 0);
  Onnx__ModelProto *m = read_model(path);
  CHECK(m != NULL);
  if (m) {
    CHECK(m->ir_version == 7 && m->n_opset_import == 1 && m->opset_import[0]->version == 13);
    CHECK(strcmp(m->producer_name, "caffegrid") == 0);
    const Onnx__GraphProto *g = m->graph;
    const char *ops[] = {"Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Softmax"};
    CHECK_EQ_INT(g->n_node, 6);
    for (size_t i = 0; i < g->n_node && i < 6; i++) CHECK_MSG(strcmp(g->node[i]->op_type, ops[i]) == 0, "node %zu: %s", i, g->node[i]->op_type);
    /* the in-place ReLU writes the blob last, so its output carries the name; the Convolution's is BLOB/LAYER */
    CHECK(g->n_node > 1 && strcmp(g->node[0]->output[0], "conv/conv") == 0 && strcmp(g->node[1]->output[0], "conv") == 0);
    CHECK_EQ_INT(g->n_initializer, 4); /* conv W and b, ip W and b */
    CHECK(g->n_input == 1 && strcmp(g->input[0]->name, "data") == 0);
    const Onnx__TensorShapeProto *s = g->input[0]->type->tensor_type->shape;
    CHECK(s->n_dim == 4 && s->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
          strcmp(s->dim[0]->dim_param, "N") == 0 && s->dim[3]->dim_value == 8);
    CHECK(g->n_output == 1 && strcmp(g->output[0]->name, "prob") == 0);
    onnx__model_proto__free_unpacked(m, NULL);
  }
  cg_onnx_report_free(&report);
  cg_onnx_options fixed = {.opset = 17, .fixed_batch = true};
  CHECK_EQ_INT(cg_net_export_onnx(net, &fixed, path, NULL), 0);
  m = read_model(path);
  if (m) {
    CHECK(m->ir_version == 8 && m->opset_import[0]->version == 17);
    CHECK(m->graph->input[0]->type->tensor_type->shape->dim[0]->dim_value == 4);
    onnx__model_proto__free_unpacked(m, NULL);
  }
  cg_onnx_options old = {.opset = 11};
  CHECK(cg_net_export_onnx(net, &old, path, NULL) == CG_ERR_INVALID);
  CHECK_STR_CONTAINS(cg_error_message(), "ONNX opset 11: this exporter writes opsets 13 to 17");
  cg_net_free(net);
}

static void test_refusals_name_the_layer(void) {
  cg_net *net = build("refused.prototxt",
                      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 2 dim: 3 } } } "
                      "layer { name: 'norm' type: 'BatchNorm' bottom: 'data' top: 'norm' batch_norm_param { "
                      "use_global_stats: false } }");
  if (!net) return;
  char path[256];
  snprintf(path, sizeof path, "%s/refused.onnx", dir);
  CHECK(cg_net_export_onnx(net, NULL, path, NULL) == CG_ERR_UNSUPPORTED);
  CHECK_STR_CONTAINS(cg_error_message(), "layer 'norm' (BatchNorm) cannot be exported to ONNX: use_global_stats: false");
  CHECK(access(path, F_OK) != 0); /* nothing written */
  cg_net_free(net);
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("test_onnx_export: temporary folder");
    return 1;
  }
  test_every_layer_type_has_a_decision();
  test_small_net_decodes();
  test_refusals_name_the_layer();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "test_onnx_export: could not remove %s\n", dir);
  return CHECK_REPORT();
}
