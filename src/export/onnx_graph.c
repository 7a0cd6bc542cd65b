/* The ONNX graph builder (onnx_graph.h). */
#include "export/onnx_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/atomic_file.h"
#include "caffegrid/error.h"

/* Appends `item` to a protobuf-c repeated field (count, array, capacity). */
static bool push(cg_onnx_graph *g, void ***items, size_t *count, size_t *cap, void *item) {
  if (!item) return g->failed = true, false;
  if (*count == *cap) {
    size_t grown = *cap ? 2 * *cap : 16;
    void **bigger = realloc(*items, grown * sizeof *bigger);
    if (!bigger) return g->failed = true, false;
    *items = bigger, *cap = grown;
  }
  (*items)[(*count)++] = item;
  return true;
}

static char *copy(cg_onnx_graph *g, const char *s) {
  char *c = strdup(s ? s : "");
  if (!c) g->failed = true;
  return c;
}

int cg_onnx_graph_init(cg_onnx_graph *g, const char *name) {
  memset(g, 0, sizeof *g);
  g->graph = malloc(sizeof *g->graph);
  if (!g->graph) return cg_error(CG_ERR_NOMEM, "out of memory");
  onnx__graph_proto__init(g->graph);
  g->graph->name = copy(g, name && name[0] ? name : "caffegrid");
  return g->failed ? cg_error(CG_ERR_NOMEM, "out of memory") : CG_OK;
}

static char **copy_list(cg_onnx_graph *g, const char *const *names, int count) {
  char **list = calloc((size_t)count + 1, sizeof *list);
  if (!list) return g->failed = true, NULL;
  for (int i = 0; i < count; i++) list[i] = copy(g, names[i]);
  return list;
}

Onnx__NodeProto *cg_onnx_node(cg_onnx_graph *g, const char *op_type, const char *name, const char *const *inputs,
                              int num_inputs, const char *const *outputs, int num_outputs) {
  Onnx__NodeProto *n = malloc(sizeof *n);
  if (!n) return g->failed = true, NULL;
  onnx__node_proto__init(n);
  n->op_type = copy(g, op_type);
  n->name = copy(g, name);
  n->input = copy_list(g, inputs, num_inputs), n->n_input = n->input ? (size_t)num_inputs : 0;
  n->output = copy_list(g, outputs, num_outputs), n->n_output = n->output ? (size_t)num_outputs : 0;
  Onnx__GraphProto *gp = g->graph;
  if (!push(g, (void ***)&gp->node, &gp->n_node, &g->node_cap, n)) {
    protobuf_c_message_free_unpacked(&n->base, NULL);
    return NULL;
  }
  return n;
}

static Onnx__AttributeProto *attribute(cg_onnx_graph *g, Onnx__NodeProto *n, const char *name, int type) {
  if (!n) return NULL;
  Onnx__AttributeProto *a = malloc(sizeof *a);
  if (!a) return g->failed = true, NULL;
  onnx__attribute_proto__init(a);
  a->name = copy(g, name);
  a->has_type = 1, a->type = (Onnx__AttributeProto__AttributeType)type;
  /* attributes grow one at a time and nodes have few: exact-size reallocation is fine */
  Onnx__AttributeProto **grown = realloc(n->attribute, (n->n_attribute + 1) * sizeof *grown);
  if (!grown) {
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return g->failed = true, NULL;
  }
  n->attribute = grown;
  n->attribute[n->n_attribute++] = a;
  return a;
}

void cg_onnx_attr_int(cg_onnx_graph *g, Onnx__NodeProto *n, const char *name, int64_t value) {
  Onnx__AttributeProto *a = attribute(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  if (a) a->has_i = 1, a->i = value;
}

void cg_onnx_attr_float(cg_onnx_graph *g, Onnx__NodeProto *n, const char *name, float value) {
  Onnx__AttributeProto *a = attribute(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  if (a) a->has_f = 1, a->f = value;
}

void cg_onnx_attr_ints(cg_onnx_graph *g, Onnx__NodeProto *n, const char *name, const int64_t *values, int count) {
  Onnx__AttributeProto *a = attribute(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  if (!a) return;
  a->ints = malloc(((size_t)count + 1) * sizeof *a->ints);
  if (!a->ints) return (void)(g->failed = true);
  memcpy(a->ints, values, (size_t)count * sizeof *a->ints);
  a->n_ints = (size_t)count;
}

static void tensor(cg_onnx_graph *g, const char *name, int type, const int64_t *dims, int num_dims, const void *values,
                   size_t bytes) {
  Onnx__TensorProto *t = malloc(sizeof *t);
  if (!t) return (void)(g->failed = true);
  onnx__tensor_proto__init(t);
  t->name = copy(g, name);
  t->has_data_type = 1, t->data_type = type;
  t->dims = malloc(((size_t)num_dims + 1) * sizeof *t->dims);
  t->raw_data.data = malloc(bytes ? bytes : 1);
  if (!t->dims || !t->raw_data.data) g->failed = true;
  if (t->dims && num_dims > 0) memcpy(t->dims, dims, (size_t)num_dims * sizeof *t->dims), t->n_dims = (size_t)num_dims;
  if (t->raw_data.data && bytes) memcpy(t->raw_data.data, values, bytes), t->raw_data.len = bytes, t->has_raw_data = 1;
  Onnx__GraphProto *gp = g->graph;
  if (!push(g, (void ***)&gp->initializer, &gp->n_initializer, &g->init_cap, t)) protobuf_c_message_free_unpacked(&t->base, NULL);
}

static size_t count_of(const int64_t *dims, int num_dims) {
  size_t n = 1;
  for (int i = 0; i < num_dims; i++) n *= (size_t)dims[i];
  return n;
}

/* raw_data is little-endian: this exporter runs on little-endian machines (x86-64, arm64) */
void cg_onnx_floats(cg_onnx_graph *g, const char *name, const int64_t *dims, int num_dims, const float *values) {
  tensor(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, num_dims, values, count_of(dims, num_dims) * sizeof(float));
}

void cg_onnx_int64s(cg_onnx_graph *g, const char *name, const int64_t *dims, int num_dims, const int64_t *values) {
  tensor(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims, num_dims, values,
         count_of(dims, num_dims) * sizeof(int64_t));
}

static const char *pool(cg_onnx_graph *g, char *name) {
  if (!push(g, (void ***)&g->pool, &g->pool_len, &g->pool_cap, name)) {
    free(name);
    return "";
  }
  return name;
}

const char *cg_onnx_pooled(cg_onnx_graph *g, const char *name, const char *suffix) {
  char *s = NULL;
  if ((suffix ? asprintf(&s, "%s/%s", name, suffix) : asprintf(&s, "%s", name)) < 0) return g->failed = true, "";
  return pool(g, s);
}

const char *cg_onnx_temp(cg_onnx_graph *g, const char *base) {
  char *name = NULL;
  if (asprintf(&name, "%s:%d", base, ++g->temp_count) < 0) return g->failed = true, "";
  return pool(g, name);
}

const char *cg_onnx_scalar(cg_onnx_graph *g, const char *base, float value) {
  const char *name = cg_onnx_temp(g, base);
  cg_onnx_floats(g, name, NULL, 0, &value);
  return name;
}

const char *cg_onnx_int64_list(cg_onnx_graph *g, const char *base, const int64_t *values, int count) {
  const char *name = cg_onnx_temp(g, base);
  int64_t dims[1] = {count};
  cg_onnx_int64s(g, name, dims, 1, values);
  return name;
}

static Onnx__ValueInfoProto *value_info(cg_onnx_graph *g, const char *name, const int64_t *dims, int num_dims,
                                        const char *symbol) {
  Onnx__ValueInfoProto *v = malloc(sizeof *v);
  Onnx__TypeProto *type = malloc(sizeof *type);
  Onnx__TypeProto__Tensor *tt = malloc(sizeof *tt);
  if (!v || !type || !tt) {
    free(v), free(type), free(tt);
    return g->failed = true, NULL;
  }
  onnx__value_info_proto__init(v);
  onnx__type_proto__init(type);
  onnx__type_proto__tensor__init(tt);
  v->name = copy(g, name);
  v->type = type;
  type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, type->tensor_type = tt;
  tt->has_elem_type = 1, tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  if (num_dims < 0) return v;
  Onnx__TensorShapeProto *shape = malloc(sizeof *shape);
  if (!shape) return g->failed = true, v;
  onnx__tensor_shape_proto__init(shape);
  tt->shape = shape;
  shape->dim = calloc((size_t)num_dims + 1, sizeof *shape->dim);
  if (!shape->dim) return g->failed = true, v;
  for (int i = 0; i < num_dims; i++) {
    Onnx__TensorShapeProto__Dimension *d = malloc(sizeof *d);
    if (!d) return g->failed = true, v;
    onnx__tensor_shape_proto__dimension__init(d);
    if (dims[i] < 0) d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d->dim_param = copy(g, symbol);
    else d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d->dim_value = dims[i];
    shape->dim[shape->n_dim++] = d;
  }
  return v;
}

void cg_onnx_input(cg_onnx_graph *g, const char *name, const int64_t *dims, int num_dims, const char *symbol) {
  Onnx__ValueInfoProto *v = value_info(g, name, dims, num_dims, symbol);
  Onnx__GraphProto *gp = g->graph;
  if (v && !push(g, (void ***)&gp->input, &gp->n_input, &g->input_cap, v)) protobuf_c_message_free_unpacked(&v->base, NULL);
}

void cg_onnx_output(cg_onnx_graph *g, const char *name) {
  Onnx__ValueInfoProto *v = value_info(g, name, NULL, -1, NULL);
  Onnx__GraphProto *gp = g->graph;
  if (v && !push(g, (void ***)&gp->output, &gp->n_output, &g->output_cap, v))
    protobuf_c_message_free_unpacked(&v->base, NULL);
}

int cg_onnx_write_model(cg_onnx_graph *g, int opset, const char *producer_version, const char *path) {
  if (g->failed) return cg_error(CG_ERR_NOMEM, "out of memory while building the ONNX graph");
  Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
  Onnx__OperatorSetIdProto set = ONNX__OPERATOR_SET_ID_PROTO__INIT, *sets[1] = {&set};
  set.domain = (char *)"", set.has_version = 1, set.version = opset;
  /* IR 7 carries opsets up to 14, IR 8 up to 18 */
  model.has_ir_version = 1, model.ir_version = opset <= 14 ? 7 : 8;
  model.n_opset_import = 1, model.opset_import = sets;
  model.producer_name = (char *)"caffegrid", model.producer_version = (char *)producer_version;
  model.graph = g->graph;
  size_t size = onnx__model_proto__get_packed_size(&model);
  uint8_t *bytes = malloc(size ? size : 1);
  if (!bytes) return cg_error(CG_ERR_NOMEM, "out of memory serialising the ONNX model (%zu bytes)", size);
  onnx__model_proto__pack(&model, bytes);
  cg_atomic_file *f;
  int rc = cg_atomic_file_open(path, &f);
  if (!rc) {
    if (fwrite(bytes, 1, size, cg_atomic_file_stream(f)) != size) {
      cg_atomic_file_abort(f);
      rc = cg_error(CG_ERR_IO, "cannot write '%s'", path);
    } else {
      rc = cg_atomic_file_commit(f);
    }
  }
  free(bytes);
  return rc;
}

void cg_onnx_graph_free(cg_onnx_graph *g) {
  if (g->graph) protobuf_c_message_free_unpacked(&g->graph->base, NULL);
  for (size_t i = 0; i < g->pool_len; i++) free(g->pool[i]);
  free(g->pool);
  memset(g, 0, sizeof *g);
}
