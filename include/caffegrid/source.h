/* The data-source interface every data layer reads through: a source is a
 * random-access list of records (LMDB, image list, SequenceFile, HDF5, ...);
 * partitioning across ranks, per-epoch shuffling and prefetching are written
 * once on top of it (partition.h, prefetch.h), so every source gets them. */
#ifndef CAFFEGRID_SOURCE_H
#define CAFFEGRID_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef enum {
  CG_RECORD_DATUM,  /* bytes hold a serialized caffe.Datum (raw or encoded pixels, or float_data) */
  CG_RECORD_IMAGE,  /* bytes hold an encoded image file (JPEG, PNG) */
  CG_RECORD_PIXELS, /* bytes hold raw uint8 pixels, channels x height x width, BGR, channel-first */
  CG_RECORD_FLOATS, /* floats hold channels x height x width values */
} cg_record_kind;

/* One record. Every pointer is borrowed from the source and valid until the next
 * cg_source_get on the same source (sources are not shared between threads:
 * a second thread reads through cg_source_clone). */
typedef struct cg_record {
  cg_record_kind kind;
  const char *id; /* key, path or SampleID, for messages and feature output; NUL-terminated */
  const uint8_t *bytes;
  size_t num_bytes;
  const float *floats;
  size_t num_floats;
  int channels, height, width; /* for PIXELS and FLOATS */
  float label;
  bool has_label;
} cg_record;

typedef struct cg_source cg_source;

typedef struct cg_source_ops {
  const char *name; /* "lmdb", "image_list", "seqfile", "hdf5", ... */
  /* Opens `location` (a path); errors name it. */
  int (*open)(const char *location, const void *options, void **state);
  size_t (*count)(void *state);
  /* Record `index` (0 <= index < count). Errors name the record. */
  int (*get)(void *state, size_t index, cg_record *out);
  /* A second handle on the same data for another thread, sharing what is read-only
   * (keys, list entries). May be NULL: the source is then opened again. */
  int (*clone)(void *state, void **out);
  void (*close)(void *state);
} cg_source_ops;

/* Options of the "image_list" source (Caffe's ImageData list: "path label" per line). */
typedef struct cg_image_list_options {
  const char *root_folder; /* prefixed to every path as written (Caffe does no '/' joining); NULL = "" */
} cg_image_list_options;

/* Opens a source of the given type ("lmdb", "image_list"); options are type-specific
 * (may be NULL) and borrowed: they must outlive the source and its clones. An unknown
 * type is an error listing the known ones. */
int cg_source_open(const char *type, const char *location, const void *options, cg_source **out);
/* Another handle on the same data, for another thread. */
int cg_source_clone(const cg_source *s, cg_source **out);
size_t cg_source_count(const cg_source *s);
int cg_source_get(cg_source *s, size_t index, cg_record *out);
const char *cg_source_location(const cg_source *s);
const char *cg_source_type(const cg_source *s);
void cg_source_close(cg_source *s); /* NULL is a no-op */

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
