/* In-place upgrades of old Caffe nets and solvers (facts from BVLC Caffe's
 * upgrade_proto.cpp). Values are moved, not copied, from the old fields to the
 * new ones, and every step leaves a message protobuf-c can still free. */
#include "proto/upgrade.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"

/* One list: V1 layer type enum names and the type strings Caffe gives them. */
#define CG_V1_LAYER_TYPES(X)                                                                  \
  X(NONE, "") X(ABSVAL, "AbsVal") X(ACCURACY, "Accuracy") X(ARGMAX, "ArgMax") X(BNLL, "BNLL")  \
  X(CONCAT, "Concat") X(CONTRASTIVE_LOSS, "ContrastiveLoss") X(CONVOLUTION, "Convolution")     \
  X(DECONVOLUTION, "Deconvolution") X(DATA, "Data") X(DROPOUT, "Dropout")                      \
  X(DUMMY_DATA, "DummyData") X(EUCLIDEAN_LOSS, "EuclideanLoss") X(ELTWISE, "Eltwise")          \
  X(EXP, "Exp") X(FLATTEN, "Flatten") X(HDF5_DATA, "HDF5Data") X(HDF5_OUTPUT, "HDF5Output")    \
  X(HINGE_LOSS, "HingeLoss") X(IM2COL, "Im2col") X(IMAGE_DATA, "ImageData")                    \
  X(INFOGAIN_LOSS, "InfogainLoss") X(INNER_PRODUCT, "InnerProduct") X(LRN, "LRN")              \
  X(MEMORY_DATA, "MemoryData") X(MULTINOMIAL_LOGISTIC_LOSS, "MultinomialLogisticLoss")         \
  X(MVN, "MVN") X(POOLING, "Pooling") X(POWER, "Power") X(RELU, "ReLU") X(SIGMOID, "Sigmoid")  \
  X(SIGMOID_CROSS_ENTROPY_LOSS, "SigmoidCrossEntropyLoss") X(SILENCE, "Silence")               \
  X(SOFTMAX, "Softmax") X(SOFTMAX_LOSS, "SoftmaxWithLoss") X(SPLIT, "Split") X(SLICE, "Slice") \
  X(TANH, "TanH") X(WINDOW_DATA, "WindowData") X(THRESHOLD, "Threshold")

/* One list: the deprecated solver_type enum and the type strings that replace it. */
#define CG_SOLVER_TYPES(X) \
  X(SGD, "SGD") X(NESTEROV, "Nesterov") X(ADAGRAD, "AdaGrad") X(RMSPROP, "RMSProp") X(ADADELTA, "AdaDelta") X(ADAM, "Adam")

/* The *_param blocks V1LayerParameter and LayerParameter share by name. */
#define CG_V1_PARAMS(X)                                                                              \
  X(accuracy_param) X(argmax_param) X(concat_param) X(contrastive_loss_param) X(convolution_param)   \
  X(data_param) X(dropout_param) X(dummy_data_param) X(eltwise_param) X(exp_param)                  \
  X(hdf5_data_param) X(hdf5_output_param) X(hinge_loss_param) X(image_data_param)                   \
  X(infogain_loss_param) X(inner_product_param) X(lrn_param) X(memory_data_param) X(mvn_param)      \
  X(pooling_param) X(power_param) X(relu_param) X(sigmoid_param) X(softmax_param) X(slice_param)    \
  X(tanh_param) X(threshold_param) X(window_data_param) X(transform_param) X(loss_param)

static const char *v1_type_string(int type) {
  switch (type) {
#define CG_V1_CASE(name, text) \
  case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__##name: return text;
    CG_V1_LAYER_TYPES(CG_V1_CASE)
#undef CG_V1_CASE
  }
  return NULL;
}

static const char *solver_type_string(int type) {
  switch (type) {
#define CG_SOLVER_CASE(name, text) \
  case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__##name: return text;
    CG_SOLVER_TYPES(CG_SOLVER_CASE)
#undef CG_SOLVER_CASE
  }
  return NULL;
}

static int no_memory(const char *src) { return cg_error(CG_ERR_NOMEM, "%s: out of memory while upgrading", src); }

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static Caffe__LayerParameter *new_layer(void) {
  Caffe__LayerParameter *l = malloc(sizeof *l);
  if (l) caffe__layer_parameter__init(l);
  return l;
}

/* ---- deprecated data-layer transform fields ---- */

/* DataParameter, ImageDataParameter and WindowDataParameter name these fields the
 * same, so one macro moves them for all three (default values restored after). */
#define CG_MOVE_TRANSFORM_FIELDS(p, t)                        \
  do {                                                        \
    if ((p)->has_scale) {                                     \
      (t)->has_scale = 1, (t)->scale = (p)->scale;            \
      (p)->has_scale = 0, (p)->scale = 1;                     \
    }                                                         \
    if ((p)->mean_file) {                                     \
      free((t)->mean_file);                                   \
      (t)->mean_file = (p)->mean_file, (p)->mean_file = NULL; \
    }                                                         \
    if ((p)->has_crop_size) {                                 \
      (t)->has_crop_size = 1, (t)->crop_size = (p)->crop_size; \
      (p)->has_crop_size = 0, (p)->crop_size = 0;             \
    }                                                         \
    if ((p)->has_mirror) {                                    \
      (t)->has_mirror = 1, (t)->mirror = (p)->mirror;         \
      (p)->has_mirror = 0, (p)->mirror = 0;                   \
    }                                                         \
  } while (0)

#define CG_HAS_TRANSFORM_FIELDS(p) ((p) && ((p)->has_scale || (p)->mean_file || (p)->has_crop_size || (p)->has_mirror))

static int upgrade_v1_data_transform(Caffe__V1LayerParameter *l, const char *src) {
  int data = l->type == CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DATA && CG_HAS_TRANSFORM_FIELDS(l->data_param);
  int image = l->type == CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IMAGE_DATA && CG_HAS_TRANSFORM_FIELDS(l->image_data_param);
  int window = l->type == CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__WINDOW_DATA && CG_HAS_TRANSFORM_FIELDS(l->window_data_param);
  if (!data && !image && !window) return 0;
  if (!l->transform_param) {
    l->transform_param = malloc(sizeof *l->transform_param);
    if (!l->transform_param) return no_memory(src);
    caffe__transformation_parameter__init(l->transform_param);
  }
  if (data) CG_MOVE_TRANSFORM_FIELDS(l->data_param, l->transform_param);
  if (image) CG_MOVE_TRANSFORM_FIELDS(l->image_data_param, l->transform_param);
  if (window) CG_MOVE_TRANSFORM_FIELDS(l->window_data_param, l->transform_param);
  return 0;
}

/* ---- V1 layers ---- */

/* V0 layers sit in field 1 of V1LayerParameter, which our schema leaves out, so a
 * binary V0 net shows them as unknown fields. */
static int is_v0_layer(const Caffe__V1LayerParameter *l) {
  for (unsigned i = 0; i < l->base.n_unknown_fields; i++)
    if (l->base.unknown_fields[i].tag == 1) return 1;
  return 0;
}

/* The param specs a V1 layer spreads over four parallel lists. */
static int upgrade_v1_param_specs(Caffe__V1LayerParameter *v1, Caffe__LayerParameter *l, const char *src,
                                  size_t index) {
  size_t n = v1->n_param;
  if (v1->n_blob_share_mode > n) n = v1->n_blob_share_mode;
  if (v1->n_blobs_lr > n) n = v1->n_blobs_lr;
  if (v1->n_weight_decay > n) n = v1->n_weight_decay;
  if (n == 0) return 0;
  l->param = calloc(n, sizeof *l->param);
  if (!l->param) return no_memory(src);
  for (size_t i = 0; i < n; i++) {
    Caffe__ParamSpec *spec = malloc(sizeof *spec);
    if (!spec) return no_memory(src);
    caffe__param_spec__init(spec);
    l->param[l->n_param++] = spec;
    if (i < v1->n_param) {
      spec->name = v1->param[i];
      v1->param[i] = NULL;
    }
    if (i < v1->n_blob_share_mode) {
      int mode = v1->blob_share_mode[i];
      if (mode != CAFFE__V1_LAYER_PARAMETER__DIM_CHECK_MODE__STRICT &&
          mode != CAFFE__V1_LAYER_PARAMETER__DIM_CHECK_MODE__PERMISSIVE)
        return cg_error(CG_ERR_PARSE, "%s: layers %zu ('%s'): unknown blob_share_mode %d", src, index,
                        l->name ? l->name : "", mode);
      spec->has_share_mode = 1;
      spec->share_mode = mode == CAFFE__V1_LAYER_PARAMETER__DIM_CHECK_MODE__STRICT
                             ? CAFFE__PARAM_SPEC__DIM_CHECK_MODE__STRICT
                             : CAFFE__PARAM_SPEC__DIM_CHECK_MODE__PERMISSIVE;
    }
    if (i < v1->n_blobs_lr) spec->has_lr_mult = 1, spec->lr_mult = v1->blobs_lr[i];
    if (i < v1->n_weight_decay) spec->has_decay_mult = 1, spec->decay_mult = v1->weight_decay[i];
  }
  return 0;
}

/* Fills the fresh layer l from v1, moving v1's values out. */
static int upgrade_v1_layer(Caffe__V1LayerParameter *v1, Caffe__LayerParameter *l, const char *src, size_t index) {
  if (v1->has_type) {
    const char *type = v1_type_string(v1->type);
    if (!type)
      return cg_error(CG_ERR_PARSE, "%s: layers %zu ('%s'): unknown V1 layer type %d", src, index,
                      v1->name ? v1->name : "", (int)v1->type);
    if (!(l->type = dup_string(type))) return no_memory(src);
  }
#define CG_MOVE(field) (l->field = v1->field, v1->field = NULL)
#define CG_MOVE_LIST(field) (l->n_##field = v1->n_##field, v1->n_##field = 0, CG_MOVE(field))
  CG_MOVE(name);
  CG_MOVE_LIST(bottom);
  CG_MOVE_LIST(top);
  CG_MOVE_LIST(include);
  CG_MOVE_LIST(exclude);
  CG_MOVE_LIST(blobs);
  CG_MOVE_LIST(loss_weight);
#define CG_MOVE_PARAM(field) CG_MOVE(field);
  CG_V1_PARAMS(CG_MOVE_PARAM)
#undef CG_MOVE_PARAM
#undef CG_MOVE_LIST
#undef CG_MOVE
  return upgrade_v1_param_specs(v1, l, src, index);
}

static int upgrade_v1_net(Caffe__NetParameter *net, const char *src) {
  if (net->n_layers == 0) return 0;
  for (size_t i = 0; i < net->n_layers; i++) {
    Caffe__V1LayerParameter *v1 = net->layers[i];
    if (is_v0_layer(v1))
      return cg_error(CG_ERR_UNSUPPORTED,
                      "%s: layers %zu is a V0 layer definition (Caffe before 2014), which caffegrid does not read; "
                      "convert the file with an older Caffe's upgrade_net_proto_text or upgrade_net_proto_binary",
                      src, i);
    int rc = upgrade_v1_data_transform(v1, src);
    if (rc) return rc;
  }
  net->layer = calloc(net->n_layers, sizeof *net->layer);
  if (!net->layer) return no_memory(src);
  for (size_t i = 0; i < net->n_layers; i++) {
    Caffe__LayerParameter *l = new_layer();
    if (!l) return no_memory(src);
    net->layer[net->n_layer++] = l;
    int rc = upgrade_v1_layer(net->layers[i], l, src, i);
    if (rc) return rc;
  }
  for (size_t i = 0; i < net->n_layers; i++) protobuf_c_message_free_unpacked(&net->layers[i]->base, NULL);
  free(net->layers);
  net->layers = NULL;
  net->n_layers = 0;
  return 0;
}

/* ---- input fields ---- */

static int insert_front(Caffe__NetParameter *net, Caffe__LayerParameter *l) {
  Caffe__LayerParameter **grown = realloc(net->layer, (net->n_layer + 1) * sizeof *grown);
  if (!grown) return -1;
  memmove(grown + 1, grown, net->n_layer * sizeof *grown);
  grown[0] = l;
  net->layer = grown;
  net->n_layer++;
  return 0;
}

/* The input's shape from input_dim, four numbers per input. */
static Caffe__BlobShape *shape_from_dims(const int32_t *dims) {
  Caffe__BlobShape *shape = malloc(sizeof *shape);
  if (!shape) return NULL;
  caffe__blob_shape__init(shape);
  shape->dim = malloc(4 * sizeof *shape->dim);
  if (!shape->dim) {
    free(shape);
    return NULL;
  }
  shape->n_dim = 4;
  for (int j = 0; j < 4; j++) shape->dim[j] = dims[j];
  return shape;
}

static void clear_inputs(Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_input; i++) free(net->input[i]);
  free(net->input);
  for (size_t i = 0; i < net->n_input_shape; i++) protobuf_c_message_free_unpacked(&net->input_shape[i]->base, NULL);
  free(net->input_shape);
  free(net->input_dim);
  net->input = NULL, net->n_input = 0;
  net->input_shape = NULL, net->n_input_shape = 0;
  net->input_dim = NULL, net->n_input_dim = 0;
}

static int upgrade_input(Caffe__NetParameter *net, const char *src) {
  if (net->n_input == 0) return 0;
  int has_shape = net->n_input_shape > 0, has_dim = net->n_input_dim > 0;
  /* An input with neither shape nor dims comes from an old .caffemodel: drop it. */
  if (has_shape || has_dim) {
    if (has_shape && net->n_input_shape != net->n_input)
      return cg_error(CG_ERR_PARSE, "%s: net has %zu 'input' but %zu 'input_shape'; give one shape per input", src,
                      net->n_input, net->n_input_shape);
    if (!has_shape && net->n_input_dim != 4 * net->n_input)
      return cg_error(CG_ERR_PARSE, "%s: net has %zu 'input' but %zu 'input_dim'; give four per input", src,
                      net->n_input, net->n_input_dim);
    Caffe__LayerParameter *l = new_layer();
    Caffe__InputParameter *ip = malloc(sizeof *ip);
    if (ip) caffe__input_parameter__init(ip);
    if (!l || !ip || insert_front(net, l) != 0) {
      free(l);
      free(ip);
      return no_memory(src);
    }
    l->input_param = ip;
    if (!(l->name = dup_string("input")) || !(l->type = dup_string("Input"))) return no_memory(src);
    if (!(ip->shape = calloc(net->n_input, sizeof *ip->shape))) return no_memory(src);
    for (size_t i = 0; i < net->n_input; i++) {
      if (has_shape) {
        ip->shape[i] = net->input_shape[i];
        net->input_shape[i] = NULL;
      } else if (!(ip->shape[i] = shape_from_dims(net->input_dim + 4 * i))) {
        return no_memory(src);
      }
      ip->n_shape++;
    }
    if (has_shape) net->n_input_shape = 0; /* all moved */
    l->top = net->input, l->n_top = net->n_input;
    net->input = NULL, net->n_input = 0;
  }
  clear_inputs(net);
  return 0;
}

/* ---- BatchNorm ---- */

/* Old BatchNorm definitions listed three param specs to freeze the statistics by
 * hand; Caffe now keeps them but forces lr_mult and decay_mult to 0. */
static void upgrade_batch_norm(Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layer; i++) {
    Caffe__LayerParameter *l = net->layer[i];
    if (!l->type || strcmp(l->type, "BatchNorm") != 0 || l->n_param != 3) continue;
    for (size_t k = 0; k < l->n_param; k++) {
      l->param[k]->has_lr_mult = 1, l->param[k]->lr_mult = 0;
      l->param[k]->has_decay_mult = 1, l->param[k]->decay_mult = 0;
    }
  }
}

int cg_upgrade_net(Caffe__NetParameter *net, const char *source_name) {
  const char *src = source_name ? source_name : "net";
  if (!net) return cg_error(CG_ERR_INVALID, "%s: no net to upgrade", src);
  if (net->n_layer > 0 && net->n_layers > 0)
    return cg_error(CG_ERR_PARSE,
                    "%s: net mixes 'layer' (current format) and 'layers' (V1 format) definitions; use one format",
                    src);
  int rc = upgrade_v1_net(net, src);
  if (!rc) rc = upgrade_input(net, src);
  if (!rc) upgrade_batch_norm(net);
  if (!rc) rc = cg_upgrade_cos_data(net, src);
  return rc;
}

int cg_upgrade_solver(Caffe__SolverParameter *s, const char *source_name) {
  const char *src = source_name ? source_name : "solver";
  if (!s) return cg_error(CG_ERR_INVALID, "%s: no solver to upgrade", src);
  if (s->has_solver_type) {
    const char *name = solver_type_string(s->solver_type);
    if (!name) return cg_error(CG_ERR_PARSE, "%s: unknown solver_type %d", src, (int)s->solver_type);
    int has_type = s->type && s->type != caffe__solver_parameter__type__default_value;
    if (has_type && strcmp(s->type, name) != 0)
      return cg_error(CG_ERR_PARSE, "%s: solver_type (%s) and type (\"%s\") disagree; give only 'type'", src, name,
                      s->type);
    if (!has_type && !(s->type = dup_string(name))) {
      s->type = caffe__solver_parameter__type__default_value;
      return no_memory(src);
    }
    s->has_solver_type = 0;
    s->solver_type = CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__SGD;
  }
  char where[1024];
  int rc = 0;
  if (s->net_param) {
    snprintf(where, sizeof where, "%s: net_param", src);
    if ((rc = cg_upgrade_net(s->net_param, where))) return rc;
  }
  if (s->train_net_param) {
    snprintf(where, sizeof where, "%s: train_net_param", src);
    if ((rc = cg_upgrade_net(s->train_net_param, where))) return rc;
  }
  for (size_t i = 0; i < s->n_test_net_param; i++) {
    snprintf(where, sizeof where, "%s: test_net_param %zu", src, i);
    if ((rc = cg_upgrade_net(s->test_net_param[i], where))) return rc;
  }
  return 0;
}
