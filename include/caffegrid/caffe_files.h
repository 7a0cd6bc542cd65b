/* Caffe's binary records and files without its protobuf types: Datums packed for
 * converters and read back for listings, what a .caffemodel, .solverstate or
 * .binaryproto holds (for `caffegrid inspect`), and mean files written as Caffe's
 * compute_image_mean writes them. */
#ifndef CAFFEGRID_CAFFE_FILES_H
#define CAFFEGRID_CAFFE_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caffegrid/api.h"
#include "caffegrid/blob.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

/* A caffe.Datum. Pointers are borrowed (packing) or point into the unpacked
 * message (cg_datum_unpack's owner). */
typedef struct cg_datum {
  int channels, height, width;
  int label;
  bool has_label;
  bool encoded;          /* data holds an image file rather than raw channel-first pixels */
  const uint8_t *data;   /* raw pixels or the encoded file; NULL when absent */
  size_t data_len;
  const float *float_data; /* NULL when absent */
  size_t num_floats;
} cg_datum;

/* Serializes d into *out (malloc'd; the caller frees) of *len bytes. */
int cg_datum_pack(const cg_datum *d, uint8_t **out, size_t *len);
/* Reads a serialized Datum; its pointers stay valid until cg_datum_free(*owner).
 * A malformed one is CG_ERR_CORRUPT, its message naming `where`. */
int cg_datum_unpack(const uint8_t *bytes, size_t len, const char *where, cg_datum *out, void **owner);
void cg_datum_free(void *owner); /* NULL is a no-op */

/* A blob stored in a Caffe file. */
typedef struct cg_file_blob {
  int num_axes;                       /* 4 for the legacy num/channels/height/width form */
  int64_t shape[CG_BLOB_MAX_AXES];
  size_t count;                       /* values stored (float or double) */
  double mean;                        /* their mean; 0 when there are none */
} cg_file_blob;

typedef struct cg_file_layer {
  const char *name, *type; /* "" when absent */
  int num_blobs;
  cg_file_blob *blobs;
} cg_file_layer;

typedef enum cg_caffe_file_kind {
  CG_CAFFE_FILE_MODEL = 1, /* a NetParameter with layers: a .caffemodel */
  CG_CAFFE_FILE_SOLVER_STATE,
  CG_CAFFE_FILE_BLOB,      /* a BlobProto with values: a .binaryproto mean file */
} cg_caffe_file_kind;

/* What a binary Caffe file holds, tried as a model, then a solver state, then a
 * blob. Strings and arrays are owned by it (cg_caffe_file_free). */
typedef struct cg_caffe_file {
  cg_caffe_file_kind kind;
  /* MODEL */
  const char *net_name;
  bool v1_layers;          /* the old `layers` field */
  int num_layers;
  cg_file_layer *layers;   /* every layer, with or without blobs */
  /* SOLVER_STATE */
  int iter;
  const char *learned_net;
  int num_history;
  /* BLOB */
  cg_file_blob blob;
} cg_caffe_file;

/* Reads `len` bytes (borrowed) as a Caffe file; `name` (the user's path) is what
 * errors name. None of the three kinds: CG_ERR_UNSUPPORTED. */
int cg_caffe_file_read(const uint8_t *data, size_t len, const char *name, cg_caffe_file **out);
void cg_caffe_file_free(cg_caffe_file *f); /* NULL is a no-op */

/* Writes a 1 x channels x height x width BlobProto (a mean file, as Caffe's
 * compute_image_mean writes it) to path, atomically (caffegrid/atomic_file.h). */
int cg_mean_file_write(const char *path, int channels, int height, int width, const float *values);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
