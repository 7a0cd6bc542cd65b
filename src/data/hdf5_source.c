/* HDF5 reading and writing for the HDF5Data/HDF5Output layers, `inspect`, and
 * the "hdf5" data source. All libhdf5 calls hold hdf5_lock (the serial library is
 * not thread-safe); its automatic error printing is switched off once, and the
 * innermost message of its error stack is put into ours instead. */
#include "data/hdf5_source.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffegrid/error.h"

static pthread_mutex_t hdf5_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t hdf5_once = PTHREAD_ONCE_INIT;

static void hdf5_init(void) {
  H5open();
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void lock_hdf5(void) {
  pthread_once(&hdf5_once, hdf5_init);
  pthread_mutex_lock(&hdf5_lock);
}

static void unlock_hdf5(void) {
  H5Eclear2(H5E_DEFAULT);
  pthread_mutex_unlock(&hdf5_lock);
}

static herr_t innermost(unsigned n, const H5E_error2_t *err, void *data) {
  if (n == 0 && err->desc) snprintf(data, 200, "%s", err->desc);
  return 0;
}

/* The most specific message on libhdf5's error stack (call with the lock held). */
static const char *hdf5_detail(char buf[200]) {
  buf[0] = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, buf);
  return buf[0] ? buf : "libhdf5 error";
}

/* ---- reading datasets ---- */

/* Reads dataset `name` of an open file into *a (lock held). `missing`: when not
 * NULL, an absent dataset sets it instead of being an error. */
static int read_dataset(hid_t file, const char *path, const char *name, bool load, cg_hdf5_array *a,
                        bool *missing) {
  char detail[200];
  memset(a, 0, sizeof *a);
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
    if (missing) {
      *missing = true;
      return CG_OK;
    }
    return cg_error(CG_ERR_NOT_FOUND, "HDF5 file '%s' has no dataset '%s'", path, name);
  }
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) return cg_error(CG_ERR_INVALID, "HDF5 file '%s': '%s' is not a dataset (%s)", path, name,
                              hdf5_detail(detail));
  hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
  int rc = CG_OK;
  H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
  int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  hsize_t dims[H5S_MAX_RANK];
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
    rc = cg_error(CG_ERR_UNSUPPORTED, "HDF5 file '%s': dataset '%s' is not numeric (only float and integer types are read)",
                  path, name);
  } else if (rank < 1) {
    rc = cg_error(CG_ERR_SHAPE, "HDF5 file '%s': dataset '%s' has rank %d; rank >= 1 is needed (axis 0 counts samples)",
                  path, name, rank);
  } else if (rank > CG_BLOB_MAX_AXES) {
    rc = cg_error(CG_ERR_SHAPE, "HDF5 file '%s': dataset '%s' has %d axes, at most %d are supported", path, name, rank,
                  CG_BLOB_MAX_AXES);
  } else if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
    rc = cg_error(CG_ERR_IO, "HDF5 file '%s': cannot read the shape of dataset '%s': %s", path, name,
                  hdf5_detail(detail));
  }
  if (!rc) {
    a->num_axes = rank;
    a->count = 1;
    for (int i = 0; i < rank && !rc; i++) {
      if (dims[i] > INT_MAX || (dims[i] && a->count > ((size_t)1 << 40) / dims[i]))
        rc = cg_error(CG_ERR_SHAPE, "HDF5 file '%s': dataset '%s' is too large (axis %d has %llu entries)", path,
                      name, i, (unsigned long long)dims[i]);
      a->shape[i] = (int)dims[i];
      a->count *= (size_t)dims[i];
    }
  }
  if (!rc && load) {
    a->data = malloc(a->count ? a->count * sizeof(float) : 1);
    if (!a->data) {
      rc = cg_error(CG_ERR_NOMEM, "out of memory reading dataset '%s' of '%s' (%zu values)", name, path, a->count);
    } else if (a->count && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->data) < 0) {
      rc = cg_error(CG_ERR_CORRUPT, "HDF5 file '%s': cannot read dataset '%s': %s", path, name, hdf5_detail(detail));
    }
    if (rc) cg_hdf5_array_free(a);
  }
  if (space >= 0) H5Sclose(space);
  if (type >= 0) H5Tclose(type);
  H5Dclose(ds);
  return rc;
}

static int read_file(const char *path, const char *const *names, int n, bool load, cg_hdf5_array *out,
                     bool *missing) {
  for (int i = 0; i < n; i++) memset(&out[i], 0, sizeof out[i]);
  if (access(path, R_OK) != 0) return cg_error(CG_ERR_IO, "cannot open HDF5 file '%s': %s", path, strerror(errno));
  lock_hdf5();
  char detail[200];
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    int rc = cg_error(CG_ERR_IO, "cannot open HDF5 file '%s': %s", path, hdf5_detail(detail));
    unlock_hdf5();
    return rc;
  }
  int rc = CG_OK, first = -1;
  for (int i = 0; i < n && !rc; i++) {
    if (missing) missing[i] = false;
    rc = read_dataset(file, path, names[i], load, &out[i], missing ? &missing[i] : NULL);
    if (rc || (missing && missing[i])) continue;
    if (first < 0) first = i;
    else if (out[i].shape[0] != out[first].shape[0])
      rc = cg_error(CG_ERR_SHAPE, "HDF5 file '%s': dataset '%s' has %d rows but dataset '%s' has %d", path, names[i],
                    out[i].shape[0], names[first], out[first].shape[0]);
  }
  H5Fclose(file);
  unlock_hdf5();
  if (rc)
    for (int i = 0; i < n; i++) cg_hdf5_array_free(&out[i]);
  return rc;
}

int cg_hdf5_read(const char *path, const char *const *names, int n, bool load, cg_hdf5_array *out) {
  return read_file(path, names, n, load, out, NULL);
}

/* ---- listing ---- */

typedef struct visit_ctx {
  cg_hdf5_visit_fn fn;
  void *user;
  int rc;
} visit_ctx;

static void describe_type(hid_t type, char *buf, size_t size) {
  H5T_class_t cls = H5Tget_class(type);
  size_t bits = H5Tget_size(type) * 8;
  if (cls == H5T_FLOAT) snprintf(buf, size, "float%zu", bits);
  else if (cls == H5T_INTEGER) snprintf(buf, size, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
  else if (cls == H5T_STRING) snprintf(buf, size, "string");
  else snprintf(buf, size, "class %d", (int)cls);
}

static herr_t visit_link(hid_t group, const char *name, const H5L_info_t *info, void *data) {
  (void)info;
  visit_ctx *ctx = data;
  hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
  if (ds < 0) {
    H5Eclear2(H5E_DEFAULT);
    return 0; /* a group or something else: not listed */
  }
  hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
  hsize_t dims[H5S_MAX_RANK];
  int rank = H5Sget_simple_extent_dims(space, dims, NULL);
  unsigned long long shape[H5S_MAX_RANK];
  for (int i = 0; i < rank; i++) shape[i] = dims[i];
  char tname[32];
  describe_type(type, tname, sizeof tname);
  H5Sclose(space);
  H5Tclose(type);
  H5Dclose(ds);
  ctx->rc = ctx->fn(name, rank < 0 ? 0 : rank, shape, tname, ctx->user);
  return ctx->rc ? 1 : 0;
}

int cg_hdf5_list(const char *path, cg_hdf5_visit_fn fn, void *user) {
  if (access(path, R_OK) != 0) return cg_error(CG_ERR_IO, "cannot open HDF5 file '%s': %s", path, strerror(errno));
  lock_hdf5();
  char detail[200];
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    int rc = cg_error(CG_ERR_IO, "cannot open HDF5 file '%s': %s", path, hdf5_detail(detail));
    unlock_hdf5();
    return rc;
  }
  visit_ctx ctx = {fn, user, 0};
  herr_t status = H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit_link, &ctx);
  int rc = ctx.rc;
  if (!rc && status < 0) rc = cg_error(CG_ERR_CORRUPT, "HDF5 file '%s': cannot list its datasets: %s", path,
                                       hdf5_detail(detail));
  H5Fclose(file);
  unlock_hdf5();
  return rc;
}

/* ---- writing ---- */

enum { WRITER_MAX_SETS = 16 };

typedef struct out_set {
  char *name;
  hid_t ds;
  int num_axes;
  hsize_t dims[CG_BLOB_MAX_AXES]; /* current extent */
} out_set;

struct cg_hdf5_writer {
  char *path;
  hid_t file;
  int num_sets;
  out_set sets[WRITER_MAX_SETS];
};

int cg_hdf5_writer_open(const char *path, cg_hdf5_writer **out) {
  *out = NULL;
  cg_hdf5_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->path = strdup(path))) {
    free(w);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  lock_hdf5();
  char detail[200];
  w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  int rc = w->file < 0 ? cg_error(CG_ERR_IO, "cannot create HDF5 file '%s': %s", path, hdf5_detail(detail)) : CG_OK;
  unlock_hdf5();
  if (rc) {
    free(w->path);
    free(w);
    return rc;
  }
  *out = w;
  return CG_OK;
}

/* Creates dataset `name` with zero rows, extendible along axis 0 (lock held). */
static int create_set(cg_hdf5_writer *w, const char *name, int num_axes, const int *shape, out_set **out) {
  char detail[200];
  if (w->num_sets == WRITER_MAX_SETS)
    return cg_error(CG_ERR_INVALID, "HDF5 file '%s': more than %d datasets", w->path, WRITER_MAX_SETS);
  out_set *s = &w->sets[w->num_sets];
  memset(s, 0, sizeof *s);
  hsize_t max[CG_BLOB_MAX_AXES], chunk[CG_BLOB_MAX_AXES];
  size_t chunk_count = 1;
  for (int i = 0; i < num_axes; i++) {
    s->dims[i] = i ? (hsize_t)shape[i] : 0;
    max[i] = i ? (hsize_t)shape[i] : H5S_UNLIMITED;
    chunk[i] = shape[i] > 0 ? (hsize_t)shape[i] : 1;
    chunk_count *= chunk[i];
  }
  /* chunks must stay under 4 GiB: fewer rows per chunk when a batch is huge */
  while (chunk_count * sizeof(float) >= ((size_t)1 << 31) && chunk[0] > 1) {
    chunk_count = chunk_count / chunk[0] * ((chunk[0] + 1) / 2);
    chunk[0] = (chunk[0] + 1) / 2;
  }
  hid_t space = H5Screate_simple(num_axes, s->dims, max);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  int rc = CG_OK;
  if (space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, num_axes, chunk) < 0) {
    rc = cg_error(CG_ERR_SHAPE, "HDF5 file '%s': cannot lay out dataset '%s': %s", w->path, name, hdf5_detail(detail));
  } else {
    s->ds = H5Dcreate2(w->file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (s->ds < 0)
      rc = cg_error(CG_ERR_IO, "HDF5 file '%s': cannot create dataset '%s': %s", w->path, name, hdf5_detail(detail));
  }
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  if (!rc && !(s->name = strdup(name))) {
    H5Dclose(s->ds);
    rc = cg_error(CG_ERR_NOMEM, "out of memory");
  }
  if (rc) return rc;
  s->num_axes = num_axes;
  w->num_sets++;
  *out = s;
  return CG_OK;
}

int cg_hdf5_writer_append(cg_hdf5_writer *w, const char *name, int num_axes, const int *shape, const float *data) {
  if (num_axes < 1 || num_axes > CG_BLOB_MAX_AXES)
    return cg_error(CG_ERR_SHAPE, "HDF5 file '%s': dataset '%s' needs 1 to %d axes, got %d", w->path, name,
                    CG_BLOB_MAX_AXES, num_axes);
  char detail[200];
  lock_hdf5();
  int rc = CG_OK;
  out_set *s = NULL;
  for (int i = 0; i < w->num_sets; i++)
    if (strcmp(w->sets[i].name, name) == 0) s = &w->sets[i];
  if (!s) {
    rc = create_set(w, name, num_axes, shape, &s);
  } else {
    bool same = s->num_axes == num_axes;
    for (int i = 1; i < num_axes && same; i++) same = s->dims[i] == (hsize_t)shape[i];
    if (!same) rc = cg_error(CG_ERR_SHAPE, "HDF5 file '%s': rows appended to dataset '%s' changed shape", w->path, name);
  }
  if (!rc && shape[0] > 0) {
    hsize_t start[CG_BLOB_MAX_AXES] = {0}, count[CG_BLOB_MAX_AXES], grown[CG_BLOB_MAX_AXES];
    for (int i = 0; i < num_axes; i++) count[i] = (hsize_t)shape[i], grown[i] = s->dims[i];
    start[0] = s->dims[0];
    grown[0] += (hsize_t)shape[0];
    hid_t fspace = -1, mspace = -1;
    if (H5Dset_extent(s->ds, grown) < 0 || (fspace = H5Dget_space(s->ds)) < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (mspace = H5Screate_simple(num_axes, count, NULL)) < 0 ||
        H5Dwrite(s->ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, data) < 0 ||
        H5Fflush(w->file, H5F_SCOPE_LOCAL) < 0) {
      rc = cg_error(CG_ERR_IO, "HDF5 file '%s': cannot write dataset '%s': %s", w->path, name, hdf5_detail(detail));
    } else {
      s->dims[0] = grown[0];
    }
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
  }
  unlock_hdf5();
  return rc;
}

int cg_hdf5_writer_close(cg_hdf5_writer *w) {
  if (!w) return CG_OK;
  lock_hdf5();
  for (int i = 0; i < w->num_sets; i++) {
    H5Dclose(w->sets[i].ds);
    free(w->sets[i].name);
  }
  char detail[200];
  int rc = H5Fclose(w->file) < 0 ? cg_error(CG_ERR_IO, "cannot close HDF5 file '%s': %s", w->path, hdf5_detail(detail))
                                 : CG_OK;
  unlock_hdf5();
  free(w->path);
  free(w);
  return rc;
}

/* ---- the "hdf5" data source ---- */

typedef struct h5_state {
  char **paths;
  int num_files;
  size_t *first_row; /* num_files + 1 */
  bool *has_label;
  const char *names[2];
  int row_axes;
  int row_shape[CG_BLOB_MAX_AXES];
  size_t row_size;
  int loaded; /* file whose arrays are in data/label; -1: none */
  cg_hdf5_array data, label;
  char *id;
  size_t id_cap;
} h5_state;

static void h5_close(void *state) {
  h5_state *s = state;
  if (!s) return;
  cg_hdf5_free_list(s->paths, s->num_files);
  free(s->first_row);
  free(s->has_label);
  free((char *)s->names[0]);
  free((char *)s->names[1]);
  cg_hdf5_array_free(&s->data);
  cg_hdf5_array_free(&s->label);
  free(s->id);
  free(s);
}

static int h5_open(const char *location, const void *options, void **state) {
  *state = NULL;
  const cg_hdf5_source_options *o = options;
  h5_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  s->loaded = -1;
  s->names[0] = strdup(o && o->data_dataset ? o->data_dataset : "data");
  s->names[1] = strdup(o && o->label_dataset ? o->label_dataset : "label");
  int rc = !s->names[0] || !s->names[1] ? cg_error(CG_ERR_NOMEM, "out of memory") : CG_OK;
  if (!rc && cg_hdf5_is_file(location)) {
    s->paths = calloc(1, sizeof *s->paths);
    if (!s->paths || !(s->paths[0] = strdup(location))) rc = cg_error(CG_ERR_NOMEM, "out of memory");
    else s->num_files = 1;
  } else if (!rc) {
    rc = cg_hdf5_read_list(location, &s->paths, &s->num_files);
  }
  if (!rc) {
    s->first_row = calloc((size_t)s->num_files + 1, sizeof *s->first_row);
    s->has_label = calloc((size_t)s->num_files, sizeof *s->has_label);
    if (!s->first_row || !s->has_label) rc = cg_error(CG_ERR_NOMEM, "out of memory");
  }
  for (int i = 0; i < s->num_files && !rc; i++) {
    cg_hdf5_array a[2];
    bool missing[2];
    rc = read_file(s->paths[i], s->names, 2, false, a, missing);
    if (rc) break;
    if (missing[0]) {
      rc = cg_error(CG_ERR_NOT_FOUND, "HDF5 file '%s' has no dataset '%s'", s->paths[i], s->names[0]);
      break;
    }
    s->has_label[i] = !missing[1];
    if (i == 0) {
      s->row_axes = a[0].num_axes - 1;
      s->row_size = 1;
      for (int k = 1; k < a[0].num_axes; k++) s->row_shape[k - 1] = a[0].shape[k], s->row_size *= (size_t)a[0].shape[k];
    } else {
      bool same = a[0].num_axes - 1 == s->row_axes;
      for (int k = 1; k < a[0].num_axes && same; k++) same = a[0].shape[k] == s->row_shape[k - 1];
      if (!same) {
        rc = cg_error(CG_ERR_SHAPE, "HDF5 file '%s': rows of dataset '%s' are shaped differently from those in '%s'",
                      s->paths[i], s->names[0], s->paths[0]);
        break;
      }
    }
    s->first_row[i + 1] = s->first_row[i] + (size_t)a[0].shape[0];
  }
  if (!rc && s->first_row[s->num_files] == 0) rc = cg_error(CG_ERR_INVALID, "HDF5 source '%s' holds no rows", location);
  if (rc) {
    h5_close(s);
    return rc;
  }
  *state = s;
  return CG_OK;
}

static size_t h5_count(void *state) {
  h5_state *s = state;
  return s->first_row[s->num_files];
}

static int h5_get(void *state, size_t index, cg_record *out) {
  h5_state *s = state;
  memset(out, 0, sizeof *out);
  if (index >= h5_count(s)) return cg_error(CG_ERR_INVALID, "HDF5 source: record %zu of %zu", index, h5_count(s));
  int lo = 0, hi = s->num_files - 1;
  while (lo < hi) { /* the last file whose first row is <= index */
    int mid = (lo + hi + 1) / 2;
    if (s->first_row[mid] <= index) lo = mid;
    else hi = mid - 1;
  }
  if (s->loaded != lo) {
    cg_hdf5_array_free(&s->data);
    cg_hdf5_array_free(&s->label);
    s->loaded = -1;
    cg_hdf5_array a[2];
    int rc = read_file(s->paths[lo], s->names, s->has_label[lo] ? 2 : 1, true, a, NULL);
    if (rc) return rc;
    if ((size_t)a[0].shape[0] != s->first_row[lo + 1] - s->first_row[lo] || a[0].count / (size_t)a[0].shape[0] != s->row_size) {
      cg_hdf5_array_free(&a[0]);
      if (s->has_label[lo]) cg_hdf5_array_free(&a[1]);
      return cg_error(CG_ERR_CORRUPT, "HDF5 file '%s' changed since it was opened", s->paths[lo]);
    }
    s->data = a[0];
    if (s->has_label[lo]) s->label = a[1];
    s->loaded = lo;
  }
  size_t row = index - s->first_row[lo];
  size_t need = strlen(s->paths[lo]) + 24;
  if (need > s->id_cap) {
    char *id = realloc(s->id, need);
    if (!id) return cg_error(CG_ERR_NOMEM, "out of memory");
    s->id = id;
    s->id_cap = need;
  }
  snprintf(s->id, s->id_cap, "%s:%zu", s->paths[lo], row);
  out->kind = CG_RECORD_FLOATS;
  out->id = s->id;
  out->floats = s->data.data + row * s->row_size;
  out->num_floats = s->row_size;
  out->channels = s->row_axes > 0 ? s->row_shape[0] : 1;
  out->height = s->row_axes > 1 ? s->row_shape[1] : 1;
  out->width = 1;
  for (int k = 2; k < s->row_axes; k++) out->width *= s->row_shape[k];
  if (s->has_label[lo] && s->label.count) {
    size_t per = s->label.count / (size_t)s->label.shape[0];
    out->label = per ? s->label.data[row * per] : 0;
    out->has_label = per > 0;
  }
  return CG_OK;
}

const cg_source_ops cg_source_hdf5 = {
    .name = "hdf5", .open = h5_open, .count = h5_count, .get = h5_get, .close = h5_close,
};
