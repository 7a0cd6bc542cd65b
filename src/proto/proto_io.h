/* Reading and writing Caffe's protobuf files: prototxt nets and solvers (parsed and
 * upgraded to the current schema), binary .caffemodel / .solverstate / .binaryproto
 * files, and crash-safe binary writes. Internal to caffegrid. */
#ifndef CAFFEGRID_PROTO_IO_H
#define CAFFEGRID_PROTO_IO_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "proto/caffe.pb-c.h"

/* Parses a prototxt net and applies cg_upgrade_net. Returns 0 and sets *out (the
 * caller frees it with protobuf_c_message_free_unpacked(&(*out)->base, NULL)), or
 * returns a negative cg_status with *out NULL and a message naming path:line:col. */
int cg_read_net_text(const char *path, Caffe__NetParameter **out);
/* The same from text in memory; `name` (the user's file) is what messages name. */
int cg_parse_net_text(const char *text, size_t len, const char *name, Caffe__NetParameter **out);

/* Parses a prototxt solver and applies cg_upgrade_solver; then, as Caffe does, a
 * missing snapshot_prefix becomes the solver's path without extension, and a
 * snapshot_prefix naming a directory gets the solver file's stem appended.
 * Ownership as cg_read_net_text. */
int cg_read_solver_text(const char *path, Caffe__SolverParameter **out);
/* The same from text in memory; `name` (the user's file) is what messages name and
 * what Caffe's default snapshot_prefix is made from. */
int cg_parse_solver_text(const char *text, size_t len, const char *name, Caffe__SolverParameter **out);

/* Reads a whole binary protobuf file as a message of type `desc`; a
 * caffe.NetParameter also gets cg_upgrade_net. Errors name the file, e.g. "'x' is
 * truncated or not a caffe.NetParameter". Ownership as cg_read_net_text. */
int cg_read_binary(const ProtobufCMessageDescriptor *desc, const char *path, ProtobufCMessage **out);
/* cg_read_binary on `len` bytes already in memory (borrowed); `name` stands for the
 * file in messages. Ownership as cg_read_net_text. */
int cg_parse_binary(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len, const char *name,
                    ProtobufCMessage **out);

/* Writes msg in binary through caffegrid/atomic_file.h, so path holds either its old
 * content or all of the new, never part. Returns 0 or CG_ERR_IO (the temporary file
 * is removed). */
int cg_write_binary_atomic(const ProtobufCMessage *msg, const char *path);

#endif
