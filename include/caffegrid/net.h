/* caffegrid nets: a Caffe NetParameter built for one phase, run forward and
 * backward on the CPU. All learnable parameters live in one flat array and all
 * their gradients in another (param_data / param_diff), each parameter blob a
 * view into them. */
#ifndef CAFFEGRID_NET_H
#define CAFFEGRID_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caffegrid/blob.h"

#include "caffegrid/api.h"
#include "caffegrid/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef struct cg_net cg_net;

typedef struct cg_net_options {
  int phase;               /* 0 = TRAIN, 1 = TEST */
  int level;               /* NetState level */
  const char *const *stages;
  int num_stages;
  uint64_t seed;           /* fillers, dropout, shuffles */
  int rank, world_size;    /* this process's share of the data (0, 1 when alone) */
  const char *source_name; /* for messages: the prototxt's path */
  bool exact_pass;         /* data layers read each of this rank's records once, in order (scoring, features) */
  int data_threads;        /* prefetch threads per data layer: 0 = the default (1), -1 = none (read in forward) */
  bool skip_bad_records;   /* a record that cannot be read is logged, counted and replaced, not an error */
  double max_bad_fraction; /* with skip_bad_records: more bad records than this fraction is an error (0: 0.1) */
  cg_backend_options backend; /* the kernels its layers compute with (caffegrid/runtime.h); zeroed = default */
} cg_net_options;

/* What the host program feeds a phase of a net (the Spark helpers ask this instead of
 * reading prototxt themselves): the first MemoryData layer that phase includes, by
 * Caffe's include/exclude rules (level 0, no stages), with its memory_data_param and
 * transform_param as the library parses them. Strings are copied (truncated to fit). */
typedef struct cg_memory_data_info {
  char layer[256];
  int batch_size, channels, height, width;
  char source[4096];      /* CaffeOnSpark's memory_data_param.source ("" when absent) */
  char source_class[256]; /* CaffeOnSpark's layer-level source_class ("" when absent) */
  bool image_encoded;
  /* transform_param */
  float scale;
  int crop_size;
  bool mirror, force_color, force_gray;
  char mean_file[4096];
  int num_mean_values;
  float mean_values[4]; /* the first 4 given */
} cg_memory_data_info;
/* From a net's text; `source_name` (the user's file) is what errors name: a parse
 * error with its line, or "no MemoryData layer for phase TRAIN". */
int cg_net_text_memory_data(const char *text, size_t len, const char *source_name, int phase, cg_memory_data_info *out);

/* Reads a net prototxt (text format, old formats upgraded) and builds it. */
int cg_net_create_from_file(const char *path, const cg_net_options *opt, cg_net **out);
void cg_net_free(cg_net *net); /* NULL is a no-op */

/* Forward through every layer; *loss (may be NULL) gets the weighted sum of loss tops. */
int cg_net_forward(cg_net *net, float *loss);
/* Backward through the layers that need it; parameter gradients accumulate. */
void cg_net_backward(cg_net *net);
/* pycaffe's _forward(start, end) and _backward(start, end): forward through layers
 * start..end, backward from layer start down to end (both inclusive, indices in
 * forward order). *loss: the weighted loss of the layers run. Errors: a layer index
 * out of range, or a layer's own error. */
int cg_net_forward_range(cg_net *net, int start, int end, float *loss);
int cg_net_backward_range(cg_net *net, int start, int end);
/* Reshapes every layer to its bottoms' shapes without computing (pycaffe's
 * Net.reshape, after an input blob was given a new shape). */
int cg_net_reshape(cg_net *net);

/* Caffe's scoring loop (the solver's test phase, `caffe test`): `iterations` forward
 * passes; means[k] gets the mean over them of output value k (the outputs in order,
 * each blob's values flattened: cg_net_num_output_values of them) and *loss (may be
 * NULL) the mean loss. With a communicator of several ranks each rank has scored its
 * own share, and the means are averaged over the ranks (exchanged as floats).
 * after_batch, when not NULL, is called after each pass (for per-batch log lines). */
typedef struct cg_comm cg_comm;
typedef void (*cg_batch_fn)(cg_net *net, int iteration, void *user);
size_t cg_net_num_output_values(const cg_net *net);
int cg_net_score(cg_net *net, int iterations, cg_comm *comm, double *means, double *loss, cg_batch_fn after_batch,
                 void *user);
/* Zeroes every parameter gradient (the solver does this once per iteration). */
void cg_net_clear_param_diffs(cg_net *net);

const char *cg_net_name(const cg_net *net);
int cg_net_num_layers(const cg_net *net);
const char *cg_net_layer_name(const cg_net *net, int i);
const char *cg_net_layer_type(const cg_net *net, int i);
/* Layer i's bottom and top blobs, as indices for cg_net_blob_at (in-place layers
 * have a bottom and a top with the same index). */
int cg_net_layer_num_bottoms(const cg_net *net, int i);
int cg_net_layer_bottom_index(const cg_net *net, int i, int j);
int cg_net_layer_num_tops(const cg_net *net, int i);
int cg_net_layer_top_index(const cg_net *net, int i, int j);
/* A named blob (activations), or NULL. Borrowed. */
cg_blob *cg_net_blob(const cg_net *net, const char *name);
int cg_net_num_blobs(const cg_net *net);
cg_blob *cg_net_blob_at(const cg_net *net, int i);
/* Output blobs: tops no layer consumes (Caffe's net outputs), in order. */
int cg_net_num_outputs(const cg_net *net);
cg_blob *cg_net_output(const cg_net *net, int i);
/* Loss weight of an output blob (0 for non-loss outputs). */
float cg_net_output_loss_weight(const cg_net *net, int i);
/* Number of learnable parameter blobs of layer i, and blob j. */
int cg_net_layer_num_params(const cg_net *net, int i);
cg_blob *cg_net_layer_param(const cg_net *net, int i, int j);

/* How many parameter values are NaN or infinite (weights of a diverged training). */
size_t cg_net_nonfinite_params(const cg_net *net);
/* The first layer, in forward order, with a NaN or infinite parameter, (with
 * `gradients`) parameter gradient, or output; `what` says which. -1 when all are finite. */
int cg_net_first_nonfinite(const cg_net *net, bool gradients, char *what, size_t size);

/* Flat learnable parameters (owners only; shared blobs are views of their owner). */
size_t cg_net_param_count(const cg_net *net);
float *cg_net_param_data(cg_net *net);
float *cg_net_param_diff(cg_net *net);
/* Learnable blobs in order, with their lr and decay multipliers. */
int cg_net_num_learnable(const cg_net *net);
cg_blob *cg_net_learnable(const cg_net *net, int i, float *lr_mult, float *decay_mult);

/* Where learnable blob i starts in the flat arrays, and the index of the first
 * layer (in forward order) that uses it: its gradient is complete once backward
 * has passed that layer. */
size_t cg_net_learnable_offset(const cg_net *net, int i);
int cg_net_learnable_first_layer(const cg_net *net, int i);
/* Called after each layer's backward step, in reverse layer order, with the
 * layer's index (also for layers that needed no backward). NULL removes it. */
typedef void (*cg_backward_hook)(int layer_index, void *user);
void cg_net_set_backward_hook(cg_net *net, cg_backward_hook hook, void *user);

/* Copies weights from a .caffemodel (binary NetParameter) into layers of the same
 * name; shapes must match (errors name the layer and both shapes). */
int cg_net_load_weights(cg_net *net, const char *path);
/* Writes the weights as a .caffemodel BVLC Caffe loads, atomically. */
int cg_net_save_weights(const cg_net *net, const char *path);

/* Run state beyond the weights (each layer's RNG and data position), for exact
 * resume: cg_net_state_words() 64-bit words. */
size_t cg_net_state_words(const cg_net *net);
void cg_net_get_state(const cg_net *net, uint64_t *words);
int cg_net_set_state(cg_net *net, const uint64_t *words, size_t num_words);
/* Copies parameter values into `dst` from the layers of `src` with the same names
 * (how test nets see the weights being trained). */
void cg_net_share_weights_from(cg_net *dst, const cg_net *src);

/* The record ids of the batch the first data layer produced last, and whether each
 * row is a real record (false: a repeat that fills the last batch of an exact
 * pass). Returns the number of rows, 0 when the net has no such data layer. */
int cg_net_batch_ids(cg_net *net, const char **ids, bool *valid, int max);
/* Records this rank reads per pass through its first data layer (0 when none). */
size_t cg_net_rank_records(const cg_net *net);

/* Seconds the data layers have spent waiting for their data, summed. */
double cg_net_data_wait_seconds(const cg_net *net);

/* Per-layer timing (for `caffegrid time`): enable, then read milliseconds summed since enabling. */
void cg_net_set_profiling(cg_net *net, bool on);
void cg_net_layer_times(const cg_net *net, int i, double *forward_ms, double *backward_ms);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
