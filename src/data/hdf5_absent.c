/* HDF5 in a library built without libhdf5 (make WITH_HDF5=0): everything that would
 * read or write an HDF5 file answers with an error saying so; list files and the
 * file signature still work (hdf5_files.c), so the message can name the file. */
#include <stdio.h>
#include <string.h>

#include "caffegrid/error.h"
#include "data/hdf5_source.h"

static int built_without(const char *path) {
  return cg_error(CG_ERR_UNSUPPORTED,
                  "'%s': this caffegrid was built without HDF5 (rebuild with make WITH_HDF5=1 and libhdf5-dev)",
                  path ? path : "(none)");
}

int cg_hdf5_read(const char *path, const char *const *names, int n, bool load, cg_hdf5_array *out) {
  (void)names, (void)load;
  if (out) memset(out, 0, (size_t)(n > 0 ? n : 0) * sizeof *out);
  return built_without(path);
}

int cg_hdf5_list(const char *path, cg_hdf5_visit_fn fn, void *user) {
  (void)fn, (void)user;
  return built_without(path);
}

int cg_hdf5_writer_open(const char *path, cg_hdf5_writer **out) {
  *out = NULL;
  return built_without(path);
}

int cg_hdf5_writer_append(cg_hdf5_writer *w, const char *name, int num_axes, const int *shape, const float *data) {
  (void)w, (void)num_axes, (void)shape, (void)data;
  return built_without(name);
}

int cg_hdf5_writer_close(cg_hdf5_writer *w) {
  (void)w;
  return CG_OK;
}

static int absent_open(const char *location, const void *options, void **state) {
  (void)options;
  *state = NULL;
  return built_without(location);
}

const cg_source_ops cg_source_hdf5 = {.name = "hdf5", .open = absent_open};
