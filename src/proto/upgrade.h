/* Brings net and solver definitions written for older Caffe versions up to the
 * current schema, in place, as BVLC Caffe's upgrade_proto.cpp does on load.
 * Internal to caffegrid; proto_io.h's readers call these for you. */
#ifndef CAFFEGRID_PROTO_UPGRADE_H
#define CAFFEGRID_PROTO_UPGRADE_H

#include "proto/caffe.pb-c.h"

/* Upgrades `net` in place, in Caffe's order:
 *   - V1 `layers { type: CONVOLUTION blobs_lr: 1 ... }` become `layer {}` entries
 *     (type enum -> type string, blobs_lr/weight_decay/param names/blob_share_mode
 *     -> `param {}` specs, every *_param moved over), after their deprecated data
 *     fields (scale, mean_file, crop_size, mirror in data_param, image_data_param,
 *     window_data_param) have moved into transform_param;
 *   - `input` + `input_shape` / `input_dim` become an Input layer at the front;
 *   - BatchNorm layers with three param specs get lr_mult and decay_mult 0.
 * A net that has both `layer` and `layers`, or V0 layer definitions (Caffe before
 * 2014), is refused. `source_name` only labels errors. Returns 0 or a negative
 * cg_status; after an error `net` is still a valid message to free, but may be
 * partly upgraded. */
int cg_upgrade_net(Caffe__NetParameter *net, const char *source_name);
/* CaffeOnSpark's CoSData layers (image + label tops) as MemoryData layers (upgrade_cos_data.c). */
int cg_upgrade_cos_data(Caffe__NetParameter *net, const char *source_name);
/* Why a CoSData layer is not of that form (NULL when it is). */
const char *cg_cos_data_form_problem(const Caffe__LayerParameter *l);

/* Upgrades `s` in place: the deprecated solver_type enum becomes the type string
 * ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"); it is an error if
 * both are given and disagree. Inline nets (net_param, train_net_param,
 * test_net_param) get cg_upgrade_net. Returns 0 or a negative cg_status. */
int cg_upgrade_solver(Caffe__SolverParameter *s, const char *source_name);

#endif
