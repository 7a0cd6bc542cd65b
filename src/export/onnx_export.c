/* The ONNX exporter's driver: walks the built TEST net in order, turns data layers
 * into graph inputs, leaves out what only trains or scores, asks each layer's
 * emitter for its nodes, names the values so every blob's final value keeps the
 * blob's name, and writes the model. */
#include "export/onnx_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"

#ifndef CAFFEGRID_VERSION
#define CAFFEGRID_VERSION "unknown"
#endif

static const cg_onnx_layer_map layer_maps[] = {
    {"Input", CG_ONNX_DATA, NULL, "graph input (every top)"},
    {"Data", CG_ONNX_DATA, NULL, "graph input (the data top)"},
    {"ImageData", CG_ONNX_DATA, NULL, "graph input (the data top)"},
    {"MemoryData", CG_ONNX_DATA, NULL, "graph input (the data top)"},
    {"HDF5Data", CG_ONNX_DATA, NULL, "graph input (the first top)"},
    {"DummyData", CG_ONNX_DATA, NULL, "graph input (the first top)"},
    {"Dropout", CG_ONNX_ALIAS, NULL, "left out: the identity at test time"},
    {"Split", CG_ONNX_ALIAS, NULL, "left out: its tops are its bottom"},
    {"Silence", CG_ONNX_DROP, NULL, "left out"},
    {"Accuracy", CG_ONNX_DROP, NULL, "left out (scores)"},
    {"SoftmaxWithLoss", CG_ONNX_DROP, NULL, "left out (trains)"},
    {"EuclideanLoss", CG_ONNX_DROP, NULL, "left out (trains)"},
    {"SigmoidCrossEntropyLoss", CG_ONNX_DROP, NULL, "left out (trains)"},
    {"HingeLoss", CG_ONNX_DROP, NULL, "left out (trains)"},
    {"MultinomialLogisticLoss", CG_ONNX_DROP, NULL, "left out (trains)"},
    {"HDF5Output", CG_ONNX_DROP, NULL, "left out (writes files)"},
    {"Convolution", CG_ONNX_OP, cg_onnx_emit_convolution, "Conv (group, dilations, pads, strides)"},
    {"Deconvolution", CG_ONNX_OP, cg_onnx_emit_deconvolution, "ConvTranspose"},
    {"InnerProduct", CG_ONNX_OP, cg_onnx_emit_inner_product, "Flatten + Gemm (axis 1), Reshape + Gemm + Reshape"},
    {"Pooling", CG_ONNX_OP, cg_onnx_emit_pooling,
     "MaxPool / AveragePool (Caffe's sizes as explicit pads; AVE divisor map where Caffe's differs), "
     "GlobalMaxPool / GlobalAveragePool"},
    {"LRN", CG_ONNX_OP, cg_onnx_emit_lrn, "LRN (ACROSS_CHANNELS); Mul, AveragePool, Mul, Add, Pow, Mul (WITHIN_CHANNEL)"},
    {"BatchNorm", CG_ONNX_OP, cg_onnx_emit_batch_norm, "Sub, Div (the stored statistics, scaled by the moving-average factor)"},
    {"Scale", CG_ONNX_OP, cg_onnx_emit_scale, "Mul (+ Add with bias_term); Reshape of a second bottom"},
    {"Bias", CG_ONNX_OP, cg_onnx_emit_bias, "Add; Reshape of a second bottom"},
    {"ReLU", CG_ONNX_OP, cg_onnx_emit_relu, "Relu, LeakyRelu (negative_slope)"},
    {"PReLU", CG_ONNX_OP, cg_onnx_emit_prelu, "PRelu"},
    {"ELU", CG_ONNX_OP, cg_onnx_emit_elu, "Elu"},
    {"Sigmoid", CG_ONNX_OP, cg_onnx_emit_unary, "Sigmoid"},
    {"TanH", CG_ONNX_OP, cg_onnx_emit_unary, "Tanh"},
    {"AbsVal", CG_ONNX_OP, cg_onnx_emit_unary, "Abs"},
    {"BNLL", CG_ONNX_OP, cg_onnx_emit_unary, "Softplus"},
    {"Power", CG_ONNX_OP, cg_onnx_emit_power, "Mul, Add, Pow (the terms that are not identities)"},
    {"Exp", CG_ONNX_OP, cg_onnx_emit_exp, "Mul, Add, Exp"},
    {"Log", CG_ONNX_OP, cg_onnx_emit_log, "Mul, Add, Log, Mul"},
    {"Threshold", CG_ONNX_OP, cg_onnx_emit_threshold, "Greater, Cast"},
    {"Swish", CG_ONNX_OP, cg_onnx_emit_swish, "Mul, Sigmoid, Mul"},
    {"Eltwise", CG_ONNX_OP, cg_onnx_emit_eltwise, "Sum (with Mul for coefficients), Mul, Max"},
    {"Softmax", CG_ONNX_OP, cg_onnx_emit_softmax, "Softmax (axis)"},
    {"ArgMax", CG_ONNX_OP, cg_onnx_emit_argmax, "ArgMax or TopK, Cast (Flatten, Unsqueeze, Concat without axis)"},
    {"Concat", CG_ONNX_OP, cg_onnx_emit_concat, "Concat"},
    {"Slice", CG_ONNX_OP, cg_onnx_emit_slice, "Split"},
    {"Crop", CG_ONNX_OP, cg_onnx_emit_crop, "Slice"},
    {"Flatten", CG_ONNX_OP, cg_onnx_emit_reshape, "Reshape"},
    {"Reshape", CG_ONNX_OP, cg_onnx_emit_reshape, "Reshape"},
};

const cg_onnx_layer_map *cg_onnx_layer_find(const char *type) {
  for (size_t i = 0; i < sizeof layer_maps / sizeof layer_maps[0]; i++)
    if (strcmp(layer_maps[i].type, type) == 0) return &layer_maps[i];
  return NULL;
}

/* ---- the emitters' helpers ---- */

static void mark_read(cg_onnx_export *x, const char *value) {
  if (!value) return;
  if (x->num_read == x->read_cap) {
    size_t cap = x->read_cap ? 2 * x->read_cap : 64;
    const char **grown = realloc(x->read, cap * sizeof *grown);
    if (!grown) return (void)(x->g.failed = true);
    x->read = grown, x->read_cap = cap;
  }
  x->read[x->num_read++] = value;
}

static bool was_read(const cg_onnx_export *x, const char *value) {
  for (size_t i = 0; i < x->num_read; i++)
    if (x->read[i] == value) return true;
  return false;
}

const char *cg_onnx_in(cg_onnx_export *x, const cg_net_layer *nl, int j) {
  const char *value = x->current[nl->bottom_ids[j]];
  mark_read(x, value);
  return value;
}

const char *cg_onnx_out(cg_onnx_export *x, const cg_net_layer *nl, int j) {
  int id = nl->top_ids[j];
  bool last = --x->writes_left[id] == 0 && !x->is_input[id];
  const char *name = cg_onnx_pooled(&x->g, x->net->blobs[id]->name, last ? NULL : nl->layer.name);
  x->current[id] = name;
  return name;
}

const char *cg_onnx_param(cg_onnx_export *x, const cg_net_layer *nl, int j, const char *suffix, const int64_t *dims,
                          int num_dims) {
  const cg_blob *b = nl->layer.params[j];
  int64_t shape[CG_BLOB_MAX_AXES];
  if (!dims) {
    for (int i = 0; i < b->num_axes; i++) shape[i] = b->shape[i];
    dims = shape, num_dims = b->num_axes;
  }
  return cg_onnx_constant(x, nl, suffix, dims, num_dims, b->data);
}

const char *cg_onnx_constant(cg_onnx_export *x, const cg_net_layer *nl, const char *suffix, const int64_t *dims,
                             int num_dims, const float *values) {
  char base[512];
  snprintf(base, sizeof base, "%s/%s", nl->layer.name, suffix);
  const char *name = cg_onnx_temp(&x->g, base);
  cg_onnx_floats(&x->g, name, dims, num_dims, values);
  return name;
}

Onnx__NodeProto *cg_onnx_op(cg_onnx_export *x, const cg_net_layer *nl, const char *op, const char *const *inputs,
                            int num_inputs, const char *output) {
  char base[512];
  snprintf(base, sizeof base, "%s/%s", nl->layer.name, op); /* node names are unique: numbered */
  return cg_onnx_node(&x->g, op, cg_onnx_temp(&x->g, base), inputs, num_inputs, &output, 1);
}

int cg_onnx_channel_dims(int64_t n, int rank, int64_t *dims) {
  dims[0] = n;
  for (int i = 1; i < rank - 1; i++) dims[i] = 1;
  return rank > 1 ? rank - 1 : 1;
}

int cg_onnx_reshape_to(cg_onnx_export *x, const cg_net_layer *nl, const char *input, const cg_blob *from,
                       const cg_blob *to, const char *output) {
  int64_t target[CG_BLOB_MAX_AXES];
  bool keeps_batch = from->num_axes > 0 && to->num_axes > 0 && from->shape[0] == to->shape[0];
  for (int i = 0; i < to->num_axes; i++) target[i] = to->shape[i];
  if (x->symbolic_batch) {
    if (!keeps_batch)
      return cg_error(CG_ERR_UNSUPPORTED, "it changes the batch axis (%d -> %d), which a symbolic batch cannot "
                      "follow: export with a fixed input shape", from->num_axes ? from->shape[0] : 0,
                      to->num_axes ? to->shape[0] : 0);
    target[0] = 0; /* Reshape's 0: the input's own dimension 0 */
  }
  const char *inputs[2] = {input, cg_onnx_int64_list(&x->g, "shape", target, to->num_axes)};
  cg_onnx_op(x, nl, "Reshape", inputs, 2, output);
  return CG_OK;
}

/* ---- the walk ---- */

static int add_inputs(cg_onnx_export *x, const cg_net_layer *nl) {
  bool every_top = strcmp(nl->layer.ops->type, "Input") == 0;
  for (int j = 0; j < nl->num_tops; j++) {
    int id = nl->top_ids[j];
    if (j > 0 && !every_top) continue; /* labels: not part of the deployed graph */
    const cg_blob *b = x->net->blobs[id];
    int64_t dims[CG_BLOB_MAX_AXES];
    for (int i = 0; i < b->num_axes; i++) dims[i] = b->shape[i];
    if (x->symbolic_batch && b->num_axes > 0) dims[0] = -1;
    cg_onnx_input(&x->g, b->name, dims, b->num_axes, "N");
    x->current[id] = b->name;
    x->is_input[id] = true;
  }
  return CG_OK;
}

static int export_layer(cg_onnx_export *x, const cg_net_layer *nl, const cg_onnx_layer_map *map) {
  /* what only feeds losses (a label, and the Split copying it) may be missing; what an
   * exported operator reads may not */
  for (int j = 0; j < nl->num_bottoms && map->kind == CG_ONNX_OP; j++)
    if (!x->current[nl->bottom_ids[j]])
      return cg_error(CG_ERR_UNSUPPORTED,
                      "it reads '%s', which the exported graph does not have (a data layer's label, or the output "
                      "of a layer left out)",
                      x->net->blobs[nl->bottom_ids[j]]->name);
  switch (map->kind) {
    case CG_ONNX_DATA: return add_inputs(x, nl);
    case CG_ONNX_DROP: /* what only losses and Accuracy read stays an output (the scores); a silenced blob does not */
      if (strcmp(nl->layer.ops->type, "Silence") == 0)
        for (int j = 0; j < nl->num_bottoms; j++) mark_read(x, x->current[nl->bottom_ids[j]]);
      return CG_OK;
    case CG_ONNX_ALIAS: /* the tops are the bottom's value: reading them reads it */
      for (int j = 0; j < nl->num_tops; j++) x->current[nl->top_ids[j]] = x->current[nl->bottom_ids[0]];
      return CG_OK;
    case CG_ONNX_OP: return map->emit(x, nl);
  }
  return CG_OK;
}

/* Every final value no exported operator reads is an output, once, under its blob's name. */
static void add_outputs(cg_onnx_export *x) {
  const char **done = calloc((size_t)x->net->num_blobs + 1, sizeof *done);
  int num_done = 0;
  if (!done) return (void)(x->g.failed = true);
  for (int id = 0; id < x->net->num_blobs; id++) {
    const char *value = x->current[id];
    bool seen = false;
    for (int k = 0; k < num_done; k++) seen |= done[k] == value;
    if (!value || seen || x->is_input[id] || was_read(x, value)) continue;
    done[num_done++] = value;
    /* a value is named after its blob, or BLOB/LAYER when a later writer took the name
     * (only a pass-through can leave such a value unread): then an Identity names it */
    bool is_blob_name = false;
    for (int other = 0; other < x->net->num_blobs && !is_blob_name; other++)
      is_blob_name = strcmp(value, x->net->blobs[other]->name) == 0;
    if (!is_blob_name) {
      const char *name = x->net->blobs[id]->name;
      cg_onnx_node(&x->g, "Identity", cg_onnx_temp(&x->g, name), &value, 1, &name, 1);
      value = name;
    }
    cg_onnx_output(&x->g, value);
  }
  free(done);
}

static int count_writes(cg_onnx_export *x) {
  for (int i = 0; i < x->net->num_layers; i++) {
    const cg_net_layer *nl = &x->net->layers[i];
    const cg_onnx_layer_map *map = cg_onnx_layer_find(nl->layer.ops->type);
    if (!map)
      return cg_error(CG_ERR_UNSUPPORTED, "%s: layer '%s' (%s) cannot be exported to ONNX: caffegrid has no ONNX form "
                      "for %s layers", x->net->opt.source_name ? x->net->opt.source_name : "net", nl->layer.name,
                      nl->layer.ops->type, nl->layer.ops->type);
    if (map->kind == CG_ONNX_OP)
      for (int j = 0; j < nl->num_tops; j++) x->writes_left[nl->top_ids[j]]++;
  }
  return CG_OK;
}

static void release(cg_onnx_export *x) {
  free(x->current), free(x->writes_left), free(x->is_input), free(x->read);
  x->read = NULL;
  cg_onnx_graph_free(&x->g);
}

/* A list of the names of graph values, malloc'd. */
static int names_of(Onnx__ValueInfoProto *const *values, size_t n, char ***out, int *count) {
  *out = calloc(n + 1, sizeof **out);
  if (!*out) return cg_error(CG_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    if (!((*out)[(*count)++] = strdup(values[i]->name))) return cg_error(CG_ERR_NOMEM, "out of memory");
  return CG_OK;
}

/* The report: the graph's inputs, outputs and size. */
static int fill_report(const cg_onnx_export *x, cg_onnx_report *r) {
  const Onnx__GraphProto *gp = x->g.graph;
  r->num_nodes = (int)gp->n_node, r->num_initializers = (int)gp->n_initializer;
  int rc = names_of(gp->input, gp->n_input, &r->inputs, &r->num_inputs);
  return rc ? rc : names_of(gp->output, gp->n_output, &r->outputs, &r->num_outputs);
}

void cg_onnx_report_free(cg_onnx_report *r) {
  if (!r) return;
  for (int i = 0; i < r->num_inputs; i++) free(r->inputs[i]);
  for (int i = 0; i < r->num_outputs; i++) free(r->outputs[i]);
  free(r->inputs), free(r->outputs);
  memset(r, 0, sizeof *r);
}

int cg_net_export_onnx(const cg_net *net, const cg_onnx_options *options, const char *path, cg_onnx_report *report) {
  if (report) memset(report, 0, sizeof *report);
  cg_onnx_options o = options ? *options : (cg_onnx_options){0};
  const char *src = net->opt.source_name ? net->opt.source_name : "net";
  if (!o.opset) o.opset = CG_ONNX_OPSET_DEFAULT;
  if (o.opset < CG_ONNX_OPSET_MIN || o.opset > CG_ONNX_OPSET_MAX)
    return cg_error(CG_ERR_INVALID, "ONNX opset %d: this exporter writes opsets %d to %d", o.opset, CG_ONNX_OPSET_MIN,
                    CG_ONNX_OPSET_MAX);
  if (net->opt.phase != CG_TEST)
    return cg_error(CG_ERR_INVALID, "%s: build the net in the TEST phase to export it (Dropout and data layers "
                    "behave differently in TRAIN)", src);
  size_t n = (size_t)net->num_blobs + 1;
  cg_onnx_export x = {.net = net, .opset = o.opset, .symbolic_batch = !o.fixed_batch};
  x.current = calloc(n, sizeof *x.current);
  x.writes_left = calloc(n, sizeof *x.writes_left);
  x.is_input = calloc(n, sizeof *x.is_input);
  int rc = x.current && x.writes_left && x.is_input ? cg_onnx_graph_init(&x.g, net->name)
                                                                        : cg_error(CG_ERR_NOMEM, "out of memory");
  if (!rc) rc = count_writes(&x);
  for (int i = 0; !rc && i < net->num_layers; i++) {
    const cg_net_layer *nl = &net->layers[i];
    rc = export_layer(&x, nl, cg_onnx_layer_find(nl->layer.ops->type));
    if (rc) rc = cg_error_wrap(rc, "%s: layer '%s' (%s) cannot be exported to ONNX: ", src, nl->layer.name,
                               nl->layer.ops->type);
  }
  if (!rc && x.g.graph->n_input == 0) rc = cg_error(CG_ERR_UNSUPPORTED, "%s: the net has no data or Input layer "
                                                   "to become the graph's input", src);
  if (!rc) add_outputs(&x);
  if (!rc && x.g.graph->n_output == 0) rc = cg_error(CG_ERR_UNSUPPORTED, "%s: nothing is left to export (every "
                                                    "layer trains or scores)", src);
  if (!rc) rc = cg_onnx_write_model(&x.g, o.opset, CAFFEGRID_VERSION, path);
  if (!rc) CG_LOG_INFO("Exported %s to %s: %zu ONNX nodes, opset %d", src, path, x.g.graph->n_node, o.opset);
  if (!rc && report) rc = fill_report(&x, report);
  if (rc) cg_onnx_report_free(report);
  release(&x);
  return rc;
}
