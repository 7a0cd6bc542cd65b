/* Protobuf text-format printer for any protobuf-c message, laid out the way Caffe
 * writes prototxt (TextFormat::Print): fields in number order, 2-space indent,
 * floats in the shortest form that reads back to the same value. */
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/text_format.h"

typedef struct {
  char *data;
  size_t len, cap;
  int failed; /* out of memory or too deep: the result is dropped */
} out_buf;

static void put(out_buf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) {
      b->failed = 1;
      return;
    }
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void put_str(out_buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_indent(out_buf *b, int level) {
  for (int i = 0; i < level; i++) put(b, "  ", 2);
}

/* Shortest %g form that reads back to the same float (or double), written with
 * '.' whatever the C locale says. */
static void put_real(out_buf *b, double v, int is_float) {
  char buf[64];
  if (isnan(v)) {
    put_str(b, signbit(v) ? "-nan" : "nan"); /* keeps the sign bit through a round trip */
    return;
  }
  if (isinf(v)) {
    put_str(b, v > 0 ? "inf" : "-inf");
    return;
  }
  int lo = is_float ? 6 : 15, hi = is_float ? 9 : 17;
  for (int prec = lo; prec <= hi; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    double back = strtod(buf, NULL);
    if (is_float ? (float)back == (float)v : back == v) break;
  }
  const char *point = localeconv()->decimal_point;
  size_t plen = point ? strlen(point) : 0;
  char *at = (plen && strcmp(point, ".") != 0) ? strstr(buf, point) : NULL;
  if (at) {
    put(b, buf, (size_t)(at - buf));
    put(b, ".", 1);
    put_str(b, at + plen);
  } else {
    put_str(b, buf);
  }
}

/* Double-quoted, with C escapes for quotes, backslash and every byte outside
 * printable ASCII (as protobuf's CEscape does). */
static void put_quoted(out_buf *b, const uint8_t *s, size_t n) {
  char esc[8];
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    switch (c) {
      case '\n': put(b, "\\n", 2); break;
      case '\r': put(b, "\\r", 2); break;
      case '\t': put(b, "\\t", 2); break;
      case '"': put(b, "\\\"", 2); break;
      case '\'': put(b, "\\'", 2); break;
      case '\\': put(b, "\\\\", 2); break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          put(b, (const char *)&s[i], 1);
        } else {
          snprintf(esc, sizeof esc, "\\%03o", c);
          put_str(b, esc);
        }
    }
  }
  put(b, "\"", 1);
}

static void print_message(out_buf *b, const ProtobufCMessage *m, int level);

/* One `name: value` line, or a `name { ... }` block; v points at the value. */
static void print_value(out_buf *b, const ProtobufCFieldDescriptor *f, const void *v, int level) {
  char buf[64];
  put_indent(b, level);
  put_str(b, f->name);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    put(b, " {\n", 3);
    print_message(b, *(ProtobufCMessage *const *)v, level + 1);
    put_indent(b, level);
    put(b, "}\n", 2);
    return;
  }
  put(b, ": ", 2);
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
      snprintf(buf, sizeof buf, "%" PRId32, *(const int32_t *)v);
      put_str(b, buf);
      break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
      snprintf(buf, sizeof buf, "%" PRIu32, *(const uint32_t *)v);
      put_str(b, buf);
      break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
      snprintf(buf, sizeof buf, "%" PRId64, *(const int64_t *)v);
      put_str(b, buf);
      break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
      snprintf(buf, sizeof buf, "%" PRIu64, *(const uint64_t *)v);
      put_str(b, buf);
      break;
    case PROTOBUF_C_TYPE_FLOAT: put_real(b, *(const float *)v, 1); break;
    case PROTOBUF_C_TYPE_DOUBLE: put_real(b, *(const double *)v, 0); break;
    case PROTOBUF_C_TYPE_BOOL: put_str(b, *(const protobuf_c_boolean *)v ? "true" : "false"); break;
    case PROTOBUF_C_TYPE_ENUM: {
      const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)v);
      if (ev) {
        put_str(b, ev->name);
      } else {
        snprintf(buf, sizeof buf, "%d", *(const int *)v);
        put_str(b, buf);
      }
      break;
    }
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(const char *const *)v;
      put_quoted(b, (const uint8_t *)(s ? s : ""), s ? strlen(s) : 0);
      break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *d = v;
      put_quoted(b, d->data, d->data ? d->len : 0);
      break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: break;
  }
  put(b, "\n", 1);
}

/* Whether a non-repeated field is set, by the rules protobuf-c's packer uses. */
static int is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const char *member = (const char *)m + f->offset;
  const char *q = (const char *)m + f->quantifier_offset;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) return *(const uint32_t *)q == f->id;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
    const void *ptr = *(const void *const *)member;
    if (!ptr) return 0;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED) return 1;
    if (f->label == PROTOBUF_C_LABEL_NONE && f->type == PROTOBUF_C_TYPE_STRING) return *(const char *)ptr != '\0';
    return ptr != f->default_value;
  }
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL) return *(const protobuf_c_boolean *)q;
  if (f->label == PROTOBUF_C_LABEL_REQUIRED) return 1;
  /* proto3 plain fields are present when not zero */
  if (f->type == PROTOBUF_C_TYPE_BYTES) return ((const ProtobufCBinaryData *)member)->len != 0;
  size_t size = f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
                        f->type == PROTOBUF_C_TYPE_SFIXED64 || f->type == PROTOBUF_C_TYPE_UINT64 ||
                        f->type == PROTOBUF_C_TYPE_FIXED64 || f->type == PROTOBUF_C_TYPE_DOUBLE
                    ? 8
                    : 4;
  static const char zero[8];
  return memcmp(member, zero, size) != 0;
}

static size_t element_size(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    default: return sizeof(uint32_t);
  }
}

static void print_message(out_buf *b, const ProtobufCMessage *m, int level) {
  if (!m) return;
  if (level > CG_TEXT_MAX_DEPTH) {
    b->failed = 1;
    return;
  }
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  for (unsigned i = 0; i < desc->n_fields && !b->failed; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    const char *member = (const char *)m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
      const char *array = *(const char *const *)member;
      for (size_t k = 0; k < n && array; k++) print_value(b, f, array + k * element_size(f), level);
    } else if (is_present(m, f)) {
      print_value(b, f, member, level);
    }
  }
}

char *cg_text_print(const ProtobufCMessage *msg) {
  out_buf b = {0};
  put(&b, "", 0); /* an empty message still prints as "" */
  if (msg) print_message(&b, msg, 0);
  if (b.failed) {
    free(b.data);
    return NULL;
  }
  return b.data;
}
