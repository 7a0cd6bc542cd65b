/* HDF5 files as Caffe uses them (through Debian's libhdf5): the list files of
 * HDF5Data, whole datasets read as floats (any float or integer type, rank >= 1,
 * the first axis counting samples), the appending writer behind HDF5Output, a
 * listing for `caffegrid inspect`, and the "hdf5" data source.
 *
 * libhdf5 (Debian's serial build) is not thread-safe: every call into it made here
 * holds one process-wide lock, and its own printing of error stacks is turned off
 * (errors come back as cg_error messages naming the file and dataset). */
#ifndef CAFFEGRID_HDF5_H
#define CAFFEGRID_HDF5_H

#include <stdbool.h>
#include <stddef.h>

#include "caffegrid/blob.h"
#include "caffegrid/source.h"
#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

/* One dataset: its shape and (when loaded) its values as floats, owned. */
typedef struct cg_hdf5_array {
  int num_axes;
  int shape[CG_BLOB_MAX_AXES];
  size_t count;
  float *data; /* NULL when only the shape was read */
} cg_hdf5_array;

void cg_hdf5_array_free(cg_hdf5_array *a); /* frees data, keeps the shape; NULL is a no-op */

/* True when `path` is an HDF5 file (by its signature). */
bool cg_hdf5_is_file(const char *path);

/* Reads a Caffe HDF5 list file: whitespace-separated paths, as Caffe reads it. A
 * relative path is taken from the working directory as in Caffe; when no such file
 * exists there but one does beside the list file, that one is used. Returns the
 * paths (owned; free with cg_hdf5_free_list). Errors name the list; an empty list is one. */
int cg_hdf5_read_list(const char *list_path, char ***paths, int *num_paths);
void cg_hdf5_free_list(char **paths, int num_paths);

/* The datasets `names[0..n)` of the file at `path`: shapes only (load = false) or
 * values too. Every dataset must exist, be numeric, have rank >= 1, and all must
 * have the same number of rows (first dimension); errors name the file and dataset. */
int cg_hdf5_read(const char *path, const char *const *names, int n, bool load, cg_hdf5_array *out);

/* Every dataset in the file, depth first: calls fn(name, num_axes, shape, type
 * description, user); fn returns 0 to go on. For `inspect`. */
typedef int (*cg_hdf5_visit_fn)(const char *name, int num_axes, const unsigned long long *shape, const char *type,
                                void *user);
int cg_hdf5_list(const char *path, cg_hdf5_visit_fn fn, void *user);

/* HDF5Output's writer: creates (truncates) `path`; each append adds rows to the
 * named float dataset (created on first use, extendible along axis 0). */
typedef struct cg_hdf5_writer cg_hdf5_writer;
int cg_hdf5_writer_open(const char *path, cg_hdf5_writer **out);
/* Appends shape[0] rows of shape[1..] floats; later appends must keep shape[1..]. */
int cg_hdf5_writer_append(cg_hdf5_writer *w, const char *name, int num_axes, const int *shape, const float *data);
int cg_hdf5_writer_close(cg_hdf5_writer *w); /* NULL is a no-op */

/* The "hdf5" data source: `location` is an .h5 file or a list file of them; each
 * row of the data dataset is one CG_RECORD_FLOATS record (channels, height, width =
 * the row's dimensions: 1 for missing ones, later ones folded into width), with its
 * label the first value of the same row of the label dataset when the file has one.
 * Ids are "FILE:ROW". Options: NULL or a cg_hdf5_source_options. */
typedef struct cg_hdf5_source_options {
  const char *data_dataset;  /* default "data" */
  const char *label_dataset; /* default "label" */
} cg_hdf5_source_options;

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
