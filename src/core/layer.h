/* The layer interface: a table of functions plus private state, following
 * Caffe's SetUp -> Reshape -> Forward/Backward contract.
 *
 * Contract (Caffe's semantics):
 *  - setup: check the layer's parameters and bottom shapes, declare learnable
 *    parameters with cg_layer_add_param (shapes only: the net allocates them in
 *    one flat array and runs their fillers after every layer is set up), and
 *    allocate private state. Do not read parameter values here.
 *  - reshape: give every top its shape from the bottoms; resize scratch buffers.
 *  - forward: compute tops. Return 0 or a cg_error code (data layers can fail).
 *  - backward: parameter gradients ACCUMULATE (+=) into params[i]->diff (the
 *    solver clears them once per iteration); bottom diffs are OVERWRITTEN, and only
 *    for bottoms with propagate_down[i] true.
 *  - In-place layers (top[0] == bottom[0]) must handle data == top data.
 */
#ifndef CG_LAYER_H
#define CG_LAYER_H

#include <stdbool.h>

#include "caffegrid/blob.h"
#include "caffegrid/error.h"
#include "core/filler.h"
#include "caffegrid/rng.h"
#include "proto/caffe.pb-c.h"

typedef enum { CG_TRAIN = 0, CG_TEST = 1 } cg_phase;

typedef struct cg_layer cg_layer;
typedef struct cg_net cg_net;

typedef struct cg_layer_ops {
  const char *type;      /* Caffe's type name, as written in prototxt */
  int min_bottoms, max_bottoms; /* -1: no limit */
  int min_tops, max_tops;
  bool is_loss;          /* top[0] gets loss_weight 1 by default */
  unsigned no_backward_bottoms; /* bit i: bottom i never gets a gradient (labels) */
  int (*setup)(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top);
  int (*reshape)(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top);
  int (*forward)(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top);
  void (*backward)(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom);
  void (*destroy)(cg_layer *l); /* frees priv; may be NULL */
  /* Data layers: how far they have read, so a resumed run continues at the same record. May be NULL. */
  uint64_t (*get_position)(const cg_layer *l);
  int (*set_position)(cg_layer *l, uint64_t position);
  /* Data layers: seconds forward spent waiting for data (prefetch not ready). May be NULL. */
  double (*data_wait_seconds)(const cg_layer *l);
  /* Data layers: ids of the records in the batch forward produced last (borrowed
   * until the next forward) and whether each row is a real record; returns the count. */
  int (*batch_ids)(cg_layer *l, const char **ids, bool *valid, int max);
  /* Data layers: records this rank reads per epoch (per pass, with exact_pass). */
  size_t (*rank_records)(const cg_layer *l);
} cg_layer_ops;

enum { CG_LAYER_MAX_PARAMS = 8 };

struct cg_layer {
  const cg_layer_ops *ops;
  const Caffe__LayerParameter *param; /* borrowed from the net's NetParameter */
  const char *name;                   /* = param->name */
  cg_phase phase;
  int num_bottoms, num_tops;
  int num_params;
  cg_blob *params[CG_LAYER_MAX_PARAMS];   /* learnable blobs, views into the net's flat arrays */
  cg_filler fillers[CG_LAYER_MAX_PARAMS]; /* how each is initialised */
  cg_rng rng;                             /* seeded by the net, for dropout, fillers, shuffles */
  cg_net *net;                            /* owning net (for data layers' context); may be NULL in tests */
  const struct cg_backend *backend;       /* the net's math kernels (math/backend.h); the default outside a net */
  void *priv;
  int bad_sample; /* set by a forward that fails on one sample of the batch (a label out of range), so the net
                   * can name that sample's record; -1 otherwise */
};

/* Declares learnable parameter number l->num_params with this shape and filler.
 * Returns the (not yet allocated) blob, or NULL with an error set. */
cg_blob *cg_layer_add_param(cg_layer *l, int num_axes, const int *shape, cg_filler filler);

/* The layer table: look a type name up ("Convolution"); NULL when unknown. */
const cg_layer_ops *cg_layer_find(const char *type);
/* Every registered layer, for tests that walk the table. */
extern const cg_layer_ops *const cg_layer_table[];
extern const int cg_layer_table_size;

/* Error helper for layers: prefixes nothing (the net adds "layer 'x' (Type): "). */
#define CG_LAYER_CHECK(cond, code, ...)   \
  do {                                    \
    if (!(cond)) return cg_error(code, __VA_ARGS__); \
  } while (0)

#endif

/* Prepares l for `param`: looks the type up, checks bottom/top counts, runs setup.
 * Parameters are declared but not allocated. Errors name the layer and type.
 * Every field is reset except l->net, l->rng and l->backend, which the caller sets
 * beforehand (a NULL backend becomes the process-wide default). */
int cg_layer_init(cg_layer *l, const Caffe__LayerParameter *param, cg_phase phase, cg_blob *const *bottom,
                  int num_bottoms, cg_blob *const *top, int num_tops);
/* For tests and single-layer use: init, give each parameter its own memory, run
 * the fillers (rng seeded with `seed`), and reshape. Free with cg_layer_destroy. */
int cg_layer_instantiate(cg_layer *l, const Caffe__LayerParameter *param, cg_phase phase, cg_blob *const *bottom,
                         int num_bottoms, cg_blob *const *top, int num_tops, uint64_t seed);
/* Frees private state and parameter blobs (not bottoms/tops). */
void cg_layer_destroy(cg_layer *l);
