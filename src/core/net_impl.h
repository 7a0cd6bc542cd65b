/* The inside of a net, shared by net_build.c, net.c and net_weights.c. */
#ifndef CG_NET_IMPL_H
#define CG_NET_IMPL_H

#include "caffegrid/net.h"
#include "core/net_proto.h"
#include "core/layer.h"

typedef struct cg_net_layer {
  cg_layer layer;
  Caffe__LayerParameter *synthesized; /* owned LayerParameter for inserted splits, else NULL */
  int num_bottoms, num_tops;
  int *bottom_ids, *top_ids;          /* indices into net->blobs */
  cg_blob **bottoms, **tops;
  bool *bottom_need_backward;
  bool need_backward;
  float *loss_weights;                /* per top */
  double forward_ms, backward_ms;
} cg_net_layer;

typedef struct cg_learnable {
  cg_blob *blob;
  float lr_mult, decay_mult;
  size_t offset;   /* into param_data / param_diff */
  int first_layer; /* the owner: the first layer in forward order that uses it */
} cg_learnable;

struct cg_net {
  char *name;
  void *owned_param;                  /* NetParameter from cg_net_create_from_file */
  cg_net_options opt;
  const struct cg_backend *backend;   /* the kernels its layers compute with (math/backend.h) */
  int num_layers;
  cg_net_layer *layers;
  int num_blobs;
  cg_blob **blobs;
  int num_outputs;
  int *output_ids;
  int num_learnable;
  cg_learnable *learnable;
  size_t param_count;
  float *param_data, *param_diff;
  bool profiling;
  cg_backward_hook backward_hook;
  void *backward_hook_user;
  cg_rng rng;
};

/* Whether a NetState (phase, level, stages of `o`) includes the layer, by its
 * include/exclude rules as Caffe's Net::StateMeetsRule decides. */
bool cg_net_layer_included(const cg_net_options *o, const Caffe__LayerParameter *p);

#endif
