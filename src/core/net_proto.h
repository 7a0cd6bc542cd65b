/* The net and caffe.proto's NetParameter, inside the library (the solver builds
 * its nets from parsed solver text, snapshots write NetParameters): the public
 * header keeps protobuf types out of sight. */
#ifndef CG_CORE_NET_PROTO_H
#define CG_CORE_NET_PROTO_H

#include "caffegrid/net.h"
#include "proto/caffe.pb-c.h"

/* Builds a net from a parsed and upgraded NetParameter. `param` is borrowed and
 * must outlive the net (cg_net_create_from_file owns its own). */
int cg_net_create(const Caffe__NetParameter *param, const cg_net_options *opt, cg_net **out);
/* Copies weights from a parsed .caffemodel into layers of the same name;
 * `source_name` is the file messages name. */
int cg_net_copy_weights_from(cg_net *net, const Caffe__NetParameter *weights, const char *source_name);
/* The net as a NetParameter with blobs (for writing); free with protobuf_c_message_free_unpacked. */
int cg_net_to_proto(const cg_net *net, Caffe__NetParameter **out);

#endif
