/* Protobuf text format (the .prototxt syntax) for any protobuf-c message type:
 * a parser with line:column errors and a printer in Caffe's layout. Internal to
 * caffegrid; callers usually want proto_io.h, which also upgrades old nets. */
#ifndef CAFFEGRID_PROTO_TEXT_FORMAT_H
#define CAFFEGRID_PROTO_TEXT_FORMAT_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

/* Deepest message nesting the parser and printer accept. */
#define CG_TEXT_MAX_DEPTH 100

/* Parses `len` bytes of text (no NUL terminator needed) into a new message of type
 * `desc`, starting from the defaults protobuf_c_message_init gives. Returns 0 and
 * sets *out, owned by the caller and freed with protobuf_c_message_free_unpacked(*out,
 * NULL); or returns CG_ERR_PARSE / CG_ERR_NOMEM, sets *out to NULL and records a
 * message like "<source_name>:LINE:COL: message 'caffe.LayerParameter' has no field
 * 'kernal_size'". Never crashes or recurses without bound on any input. */
int cg_text_parse(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                  const char *source_name, ProtobufCMessage **out);

/* cg_text_parse on a whole file; errors name the file ("cannot open 'x': ..."). */
int cg_text_parse_file(const ProtobufCMessageDescriptor *desc, const char *path,
                       ProtobufCMessage **out);

/* Prints the set fields of `msg` in field-number order the way Caffe writes
 * prototxt: 2-space indent, `name: value`, `name {` ... `}`. Unknown fields are
 * left out. Returns a malloc'd string the caller frees, or NULL when out of
 * memory or nested deeper than CG_TEXT_MAX_DEPTH. */
char *cg_text_print(const ProtobufCMessage *msg);

#endif
