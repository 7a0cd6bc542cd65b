/* Building an ONNX graph in protobuf-c messages: nodes with attributes, constant
 * tensors (initializers), inputs and outputs, and unique value names. Everything
 * is malloc'd so that protobuf_c_message_free_unpacked frees the finished model.
 * Internal to src/export. */
#ifndef CG_EXPORT_ONNX_GRAPH_H
#define CG_EXPORT_ONNX_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/onnx.pb-c.h"

typedef struct cg_onnx_graph {
  Onnx__GraphProto *graph;
  size_t node_cap, init_cap, input_cap, output_cap;
  int temp_count; /* numbers the values no Caffe blob names */
  char **pool;    /* the temporary names handed out, freed with the graph */
  size_t pool_len, pool_cap;
  bool failed;    /* out of memory somewhere: the export reports it once */
} cg_onnx_graph;

int cg_onnx_graph_init(cg_onnx_graph *g, const char *name);
/* A node op_type(inputs) -> outputs; NULL on failure (g->failed set). */
Onnx__NodeProto *cg_onnx_node(cg_onnx_graph *g, const char *op_type, const char *name, const char *const *inputs,
                              int num_inputs, const char *const *outputs, int num_outputs);
void cg_onnx_attr_int(cg_onnx_graph *g, Onnx__NodeProto *n, const char *name, int64_t value);
void cg_onnx_attr_float(cg_onnx_graph *g, Onnx__NodeProto *n, const char *name, float value);
void cg_onnx_attr_ints(cg_onnx_graph *g, Onnx__NodeProto *n, const char *name, const int64_t *values, int count);

/* Initializers: float32 or int64 tensors of shape dims[0..num_dims) (0 dims: a scalar). */
void cg_onnx_floats(cg_onnx_graph *g, const char *name, const int64_t *dims, int num_dims, const float *values);
void cg_onnx_int64s(cg_onnx_graph *g, const char *name, const int64_t *dims, int num_dims, const int64_t *values);
/* A fresh name "base:N" for a value or constant no blob names (malloc'd into the graph's pool). */
const char *cg_onnx_temp(cg_onnx_graph *g, const char *base);
/* `name`, or `name`/`suffix` when suffix is given, kept in the graph's pool (values
 * named after blobs: they outlive the blob's next write). */
const char *cg_onnx_pooled(cg_onnx_graph *g, const char *name, const char *suffix);
/* A float scalar / 1-D int64 constant under a fresh name; returns the name. */
const char *cg_onnx_scalar(cg_onnx_graph *g, const char *base, float value);
const char *cg_onnx_int64_list(cg_onnx_graph *g, const char *base, const int64_t *values, int count);

/* Graph inputs and outputs: float32 tensors; dims < 0 are symbolic (named `symbol`);
 * an output may have no shape (num_dims < 0). */
void cg_onnx_input(cg_onnx_graph *g, const char *name, const int64_t *dims, int num_dims, const char *symbol);
void cg_onnx_output(cg_onnx_graph *g, const char *name);

/* The model around the graph (which it takes over), serialised to `path` atomically. */
int cg_onnx_write_model(cg_onnx_graph *g, int opset, const char *producer_version, const char *path);
void cg_onnx_graph_free(cg_onnx_graph *g);

#endif
