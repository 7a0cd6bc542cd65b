/* What the ONNX exporter's driver (onnx_export.c) and its per-layer emitters
 * (onnx_layers_*.c) share: the export in progress, value names, and the table of
 * how each Caffe layer type is exported. Internal to src/export. */
#ifndef CG_EXPORT_ONNX_EXPORT_H
#define CG_EXPORT_ONNX_EXPORT_H

#include "caffegrid/onnx.h"
#include "core/net_impl.h"
#include "export/onnx_graph.h"

typedef struct cg_onnx_export {
  cg_onnx_graph g;
  const cg_net *net;
  int opset;
  bool symbolic_batch;
  int batch;            /* the net's batch size: dimension 0 of its inputs */
  const char **current; /* per net blob: the ONNX value holding it now; NULL when the graph has none */
  int *writes_left;     /* per net blob: exported layers still to write it */
  bool *is_input;
  const char **read;    /* the values some exported operator (or Silence) reads, by pointer */
  size_t num_read, read_cap;
} cg_onnx_export;

typedef enum cg_onnx_kind {
  CG_ONNX_DATA,  /* a data layer: its data blob is a graph input */
  CG_ONNX_DROP,  /* trains or scores only: left out */
  CG_ONNX_ALIAS, /* passes its input on at test time (Dropout, Split) */
  CG_ONNX_OP,    /* becomes ONNX nodes */
} cg_onnx_kind;

typedef int (*cg_onnx_emit_fn)(cg_onnx_export *x, const cg_net_layer *nl);

typedef struct cg_onnx_layer_map {
  const char *type;
  cg_onnx_kind kind;
  cg_onnx_emit_fn emit;
  const char *operators; /* for docs/onnx.md and messages */
} cg_onnx_layer_map;

/* The entry for a Caffe layer type, or NULL (onnx_export.c). */
const cg_onnx_layer_map *cg_onnx_layer_find(const char *type);

/* The value holding bottom j; marks it read (no longer a graph output). */
const char *cg_onnx_in(cg_onnx_export *x, const cg_net_layer *nl, int j);
/* The name for top j's new value: the blob's own name for its last writer, else
 * BLOB/LAYER; the blob then holds it. Call after reading the bottoms. */
const char *cg_onnx_out(cg_onnx_export *x, const cg_net_layer *nl, int j);
/* Layer parameter j as an initializer named LAYER/suffix, with the blob's shape, or
 * `dims` when given (same count). */
const char *cg_onnx_param(cg_onnx_export *x, const cg_net_layer *nl, int j, const char *suffix, const int64_t *dims,
                          int num_dims);
/* A float constant of shape dims named from the layer. */
const char *cg_onnx_constant(cg_onnx_export *x, const cg_net_layer *nl, const char *suffix, const int64_t *dims,
                             int num_dims, const float *values);
/* One node with one output: op(inputs) -> output; the node, to add attributes to. */
Onnx__NodeProto *cg_onnx_op(cg_onnx_export *x, const cg_net_layer *nl, const char *op, const char *const *inputs,
                            int num_inputs, const char *output);
/* [n, 1, 1, ...]: a per-channel constant's shape against a blob of rank `rank` whose channels are axis 1. */
int cg_onnx_channel_dims(int64_t n, int rank, int64_t *dims);
/* A Reshape of `input` to the shape of blob `to` (dimension 0 copied from the input
 * when both keep the batch). */
int cg_onnx_reshape_to(cg_onnx_export *x, const cg_net_layer *nl, const char *input, const cg_blob *from,
                       const cg_blob *to, const char *output);

/* The emitters (onnx_layers_*.c). */
int cg_onnx_emit_convolution(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_deconvolution(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_inner_product(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_pooling(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_lrn(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_batch_norm(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_scale(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_bias(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_relu(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_prelu(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_elu(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_unary(cg_onnx_export *x, const cg_net_layer *nl); /* Sigmoid, TanH, AbsVal, BNLL */
int cg_onnx_emit_power(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_exp(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_log(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_threshold(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_swish(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_eltwise(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_softmax(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_argmax(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_concat(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_slice(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_crop(cg_onnx_export *x, const cg_net_layer *nl);
int cg_onnx_emit_reshape(cg_onnx_export *x, const cg_net_layer *nl); /* Flatten, Reshape */

#endif
