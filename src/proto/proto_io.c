/* Caffe's protobuf files on disk: prototxt readers that parse and upgrade, the
 * binary reader, and the atomic binary writer (temp file, fsync, rename). */
#define _POSIX_C_SOURCE 200809L

#include "proto/proto_io.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffegrid/atomic_file.h"
#include "caffegrid/error.h"
#include "proto/text_format.h"
#include "proto/upgrade.h"

static int no_memory(const char *path) { return cg_error(CG_ERR_NOMEM, "out of memory reading '%s'", path); }

/* A parsed net text (rc, m from the text parser) checked and upgraded as Caffe upgrades it. */
static int finish_net_text(int rc, ProtobufCMessage *m, const char *path, Caffe__NetParameter **out) {
  if (rc) {
    /* V0 nets put a `layer {}` block inside each `layers {}`; say so plainly. */
    if (strstr(cg_error_message(), "message 'caffe.V1LayerParameter' has no field 'layer'")) {
      char first[2048];
      snprintf(first, sizeof first, "%s", cg_error_message());
      return cg_error(CG_ERR_UNSUPPORTED,
                      "%s (a V0 net from Caffe before 2014; convert it with an older Caffe's upgrade_net_proto_text)",
                      first);
    }
    return rc;
  }
  Caffe__NetParameter *net = (Caffe__NetParameter *)m;
  if ((rc = cg_upgrade_net(net, path))) {
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
  }
  *out = net;
  return 0;
}

int cg_read_net_text(const char *path, Caffe__NetParameter **out) {
  if (out) *out = NULL;
  if (!path || !out) return cg_error(CG_ERR_INVALID, "cg_read_net_text: missing argument");
  ProtobufCMessage *m = NULL;
  int rc = cg_text_parse_file(&caffe__net_parameter__descriptor, path, &m);
  return finish_net_text(rc, m, path, out);
}

int cg_parse_net_text(const char *text, size_t len, const char *name, Caffe__NetParameter **out) {
  if (out) *out = NULL;
  if (!text || !out) return cg_error(CG_ERR_INVALID, "cg_parse_net_text: missing argument");
  ProtobufCMessage *m = NULL;
  int rc = cg_text_parse(&caffe__net_parameter__descriptor, text, len, name ? name : "net", &m);
  return finish_net_text(rc, m, name ? name : "net", out);
}

/* Caffe's snapshot_prefix defaults: the solver path without its extension, or, when
 * the prefix is a directory, that directory plus the solver file's stem. */
static int default_snapshot_prefix(Caffe__SolverParameter *s, const char *path) {
  const char *file = strrchr(path, '/');
  file = file ? file + 1 : path;
  const char *dot = strrchr(file, '.');
  size_t stem_len = dot && dot != file ? (size_t)(dot - file) : strlen(file);
  struct stat st;
  char *prefix;
  if (!s->snapshot_prefix) {
    size_t n = (size_t)(file - path) + stem_len;
    if (!(prefix = malloc(n + 1))) return no_memory(path);
    memcpy(prefix, path, n);
    prefix[n] = '\0';
  } else if (stat(s->snapshot_prefix, &st) == 0 && S_ISDIR(st.st_mode)) {
    size_t dlen = strlen(s->snapshot_prefix);
    int slash = dlen > 0 && s->snapshot_prefix[dlen - 1] != '/';
    if (!(prefix = malloc(dlen + (size_t)slash + stem_len + 1))) return no_memory(path);
    memcpy(prefix, s->snapshot_prefix, dlen);
    if (slash) prefix[dlen] = '/';
    memcpy(prefix + dlen + slash, file, stem_len);
    prefix[dlen + slash + stem_len] = '\0';
    free(s->snapshot_prefix);
  } else {
    return 0;
  }
  s->snapshot_prefix = prefix;
  return 0;
}

/* A parsed solver text upgraded as Caffe upgrades it, with Caffe's default snapshot_prefix. */
static int finish_solver_text(int rc, ProtobufCMessage *m, const char *path, Caffe__SolverParameter **out) {
  if (rc) return rc;
  Caffe__SolverParameter *s = (Caffe__SolverParameter *)m;
  rc = cg_upgrade_solver(s, path);
  if (!rc) rc = default_snapshot_prefix(s, path);
  if (rc) {
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
  }
  *out = s;
  return 0;
}

int cg_read_solver_text(const char *path, Caffe__SolverParameter **out) {
  if (out) *out = NULL;
  if (!path || !out) return cg_error(CG_ERR_INVALID, "cg_read_solver_text: missing argument");
  ProtobufCMessage *m = NULL;
  int rc = cg_text_parse_file(&caffe__solver_parameter__descriptor, path, &m);
  return finish_solver_text(rc, m, path, out);
}

int cg_parse_solver_text(const char *text, size_t len, const char *name, Caffe__SolverParameter **out) {
  if (out) *out = NULL;
  if (!text || !out) return cg_error(CG_ERR_INVALID, "cg_parse_solver_text: missing argument");
  ProtobufCMessage *m = NULL;
  const char *source = name ? name : "solver";
  int rc = cg_text_parse(&caffe__solver_parameter__descriptor, text, len, source, &m);
  return finish_solver_text(rc, m, source, out);
}

/* The whole file in a malloc'd buffer (models are read in one piece anyway). */
static int read_all(const char *path, uint8_t **data, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return cg_error(CG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  /* Size the buffer from the file (one byte spare to see EOF) so a large model
   * is not copied while growing; pipes and the like grow by doubling. */
  struct stat st;
  if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      (unsigned long long)st.st_size < (unsigned long long)SIZE_MAX) {
    cap = (size_t)st.st_size + 1;
    if (!(buf = malloc(cap))) {
      fclose(fp);
      return no_memory(path);
    }
  }
  for (;;) {
    if (n == cap) {
      size_t grown_cap = cap ? cap * 2 : (size_t)1 << 20;
      uint8_t *grown = grown_cap > cap ? realloc(buf, grown_cap) : NULL;
      if (!grown) {
        rc = no_memory(path);
        break;
      }
      buf = grown;
      cap = grown_cap;
    }
    size_t got = fread(buf + n, 1, cap - n, fp);
    n += got;
    if (got == 0) {
      if (ferror(fp)) rc = cg_error(CG_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
      break;
    }
  }
  fclose(fp);
  if (rc) {
    free(buf);
    return rc;
  }
  *data = buf;
  *len = n;
  return 0;
}

int cg_parse_binary(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len, const char *name,
                    ProtobufCMessage **out) {
  if (out) *out = NULL;
  if (!desc || (!data && len) || !name || !out) return cg_error(CG_ERR_INVALID, "cg_parse_binary: missing argument");
  if (len == 0) return cg_error(CG_ERR_CORRUPT, "'%s' is empty, not a %s", name, desc->name);
  ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
  if (!m) return cg_error(CG_ERR_CORRUPT, "'%s' is truncated or not a %s (%zu bytes)", name, desc->name, len);
  int rc;
  if (desc == &caffe__net_parameter__descriptor && (rc = cg_upgrade_net((Caffe__NetParameter *)m, name))) {
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
  }
  *out = m;
  return 0;
}

int cg_read_binary(const ProtobufCMessageDescriptor *desc, const char *path, ProtobufCMessage **out) {
  if (out) *out = NULL;
  if (!desc || !path || !out) return cg_error(CG_ERR_INVALID, "cg_read_binary: missing argument");
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = read_all(path, &data, &len);
  if (rc) return rc;
  rc = cg_parse_binary(desc, data, len, path, out);
  free(data);
  return rc;
}

/* A protobuf-c output buffer that streams into a FILE, so a big model is not
 * packed into memory first. */
typedef struct {
  ProtobufCBuffer base;
  FILE *fp;
  int failed;
} file_buffer;

static void append_to_file(ProtobufCBuffer *buffer, size_t len, const uint8_t *data) {
  file_buffer *fb = (file_buffer *)buffer;
  if (!fb->failed && len && fwrite(data, 1, len, fb->fp) != len) fb->failed = 1;
}

int cg_write_binary_atomic(const ProtobufCMessage *msg, const char *path) {
  if (!msg || !path) return cg_error(CG_ERR_INVALID, "cg_write_binary_atomic: missing argument");
  cg_atomic_file *f;
  int rc = cg_atomic_file_open(path, &f);
  if (rc) return rc;
  file_buffer fb = {.base = {.append = append_to_file}, .fp = cg_atomic_file_stream(f)};
  protobuf_c_message_pack_to_buffer(msg, &fb.base);
  if (fb.failed) {
    rc = cg_error(CG_ERR_IO, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    cg_atomic_file_abort(f);
    return rc;
  }
  return cg_atomic_file_commit(f);
}
