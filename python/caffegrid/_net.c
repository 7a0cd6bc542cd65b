/* NetHandle: one cg_net seen from Python. Blob data and diffs come back as NumPy
 * views of the C memory whose base is the handle (so they keep the net alive);
 * forward, backward and file I/O run without the GIL. */
#include "_ext.h"

#include <limits.h>
#include <string.h>

#include "caffegrid/environment.h"
#include "caffegrid/error.h"
#include "caffegrid/feed.h"

enum { MAX_STAGES = 32 };

static PyObject *net_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
  (void)args, (void)kwds;
  NetHandle *self = (NetHandle *)type->tp_alloc(type, 0);
  if (self) self->busy = &self->own_busy;
  return (PyObject *)self;
}

static void net_dealloc(NetHandle *self) {
  if (!self->owner) cg_net_free(self->net); /* before `fed`: the layers point into those arrays */
  self->net = NULL;
  Py_CLEAR(self->owner);
  Py_CLEAR(self->fed);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static int net_init(NetHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"path", "phase", "level", "stages", "seed", "rank", "world_size", "exact_pass",
                           "skip_bad_records", "data_threads", NULL};
  PyObject *path = NULL, *stages_arg = NULL, *skip_arg = Py_None;
  int phase, level = 0, rank = 0, world_size = 1, exact_pass = 0, data_threads = -2;
  unsigned long long seed = 0;
  if (self->net || self->owner) {
    cgpy_raise("InvalidArgumentError", "NetHandle is already initialised");
    return -1;
  }
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&i|iOKiipOi", kwlist, PyUnicode_FSConverter, &path, &phase, &level,
                                   &stages_arg, &seed, &rank, &world_size, &exact_pass, &skip_arg, &data_threads))
    return -1;
  PyObject *stages = NULL;
  const char *stage_names[MAX_STAGES];
  int num_stages = 0, rc = -1;
  if (phase != 0 && phase != 1) {
    cgpy_raise("InvalidArgumentError", "phase must be caffegrid.TRAIN (0) or caffegrid.TEST (1), got %d", phase);
    goto done;
  }
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    cgpy_raise("InvalidArgumentError", "rank %d of world_size %d: need 0 <= rank < world_size", rank, world_size);
    goto done;
  }
  if (stages_arg && stages_arg != Py_None) {
    stages = PySequence_Fast(stages_arg, "stages must be a sequence of strings");
    if (!stages) goto done;
    if (PySequence_Fast_GET_SIZE(stages) > MAX_STAGES) {
      cgpy_raise("InvalidArgumentError", "at most %d stages", MAX_STAGES);
      goto done;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(stages); i++) {
      stage_names[num_stages] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(stages, i));
      if (!stage_names[num_stages++]) goto done;
    }
  }
  self->fed = PyDict_New();
  if (!self->fed) goto done;
  cg_net_options opt = {.phase = phase, .level = level, .stages = stage_names, .num_stages = num_stages,
                        .seed = seed, .rank = rank, .world_size = world_size, .exact_pass = exact_pass};
  if (cg_env_data_options(&opt.data_threads, &opt.skip_bad_records, &opt.max_bad_fraction)) { /* as the CLI */
    cgpy_raise_status(CG_ERR_INVALID);
    goto done;
  }
  if (skip_arg != Py_None) { /* the caller's choice wins over CAFFEGRID_SKIP_BAD_RECORDS */
    int skip = PyObject_IsTrue(skip_arg);
    if (skip < 0) goto done;
    opt.skip_bad_records = skip;
  }
  if (data_threads != -2) { /* ...and over CAFFEGRID_DATA_THREADS; 0 reads in forward, as that variable's 0 */
    if (data_threads < 0 || data_threads > 64) {
      cgpy_raise("InvalidArgumentError", "data_threads %d: expected 0 (read in forward) to 64", data_threads);
      goto done;
    }
    opt.data_threads = data_threads == 0 ? -1 : data_threads;
  }
  const char *path_c = PyBytes_AS_STRING(path);
  int status;
  cgpy_prepare_threads();
  CGPY_BEGIN_C
  status = cg_net_create_from_file(path_c, &opt, &self->net);
  CGPY_END_C
  if (status) cgpy_raise_status(status);
  else rc = 0;
done:
  Py_XDECREF(stages);
  Py_XDECREF(path);
  return rc;
}

PyObject *cgpy_net_borrowed(cg_net *net, PyObject *owner, PyObject *fed, int *busy) {
  NetHandle *self = (NetHandle *)net_new(&NetHandle_Type, NULL, NULL);
  if (!self) return NULL;
  self->net = net;
  Py_INCREF(owner);
  self->owner = owner;
  Py_INCREF(fed);
  self->fed = fed;
  self->busy = busy;
  return (PyObject *)self;
}

static int check_net(NetHandle *self) {
  if (self->net) return 0;
  cgpy_raise("InvalidArgumentError", "this NetHandle holds no net (its constructor failed or was never run)");
  return -1;
}

/* A NumPy view of a blob's data or diff; the array's base is `base`, which keeps the memory alive. */
static PyObject *blob_view(PyObject *base, const cg_blob *b, int diff) {
  npy_intp dims[CG_BLOB_MAX_AXES];
  for (int i = 0; i < b->num_axes; i++) dims[i] = b->shape[i];
  float *p = diff ? b->diff : b->data;
  if (b->count == 0) return PyArray_ZEROS(b->num_axes, dims, NPY_FLOAT32, 0);
  if (!p) return cgpy_raise("InvalidArgumentError", "blob '%s' has no memory yet", b->name ? b->name : "?");
  PyObject *a = PyArray_New(&PyArray_Type, b->num_axes, dims, NPY_FLOAT32, NULL, p, 0, NPY_ARRAY_CARRAY, NULL);
  if (!a) return NULL;
  Py_INCREF(base);
  if (PyArray_SetBaseObject((PyArrayObject *)a, base) < 0) { /* steals `base` either way */
    Py_DECREF(a);
    return NULL;
  }
  return a;
}

static PyObject *shape_tuple(const cg_blob *b) {
  PyObject *t = PyTuple_New(b->num_axes);
  for (int i = 0; t && i < b->num_axes; i++) PyTuple_SET_ITEM(t, i, PyLong_FromLong(b->shape[i]));
  return t;
}

static cg_blob *blob_arg(NetHandle *self, Py_ssize_t i) {
  if (check_net(self)) return NULL;
  if (i < 0 || i >= cg_net_num_blobs(self->net)) {
    PyErr_Format(PyExc_IndexError, "blob index %zd out of range", i);
    return NULL;
  }
  return cg_net_blob_at(self->net, (int)i);
}

static cg_blob *param_arg(NetHandle *self, Py_ssize_t layer, Py_ssize_t j) {
  if (check_net(self)) return NULL;
  if (layer < 0 || layer >= cg_net_num_layers(self->net) || j < 0 ||
      j >= cg_net_layer_num_params(self->net, (int)layer)) {
    PyErr_Format(PyExc_IndexError, "parameter (%zd, %zd) out of range", layer, j);
    return NULL;
  }
  return cg_net_layer_param(self->net, (int)layer, (int)j);
}

static PyObject *net_blob_array(NetHandle *self, PyObject *args) {
  Py_ssize_t i;
  int diff = 0;
  if (!PyArg_ParseTuple(args, "n|p", &i, &diff)) return NULL;
  cg_blob *b = blob_arg(self, i);
  return b ? blob_view((PyObject *)self, b, diff) : NULL;
}

static PyObject *net_blob_shape(NetHandle *self, PyObject *arg) {
  Py_ssize_t i = PyLong_AsSsize_t(arg);
  if (i == -1 && PyErr_Occurred()) return NULL;
  cg_blob *b = blob_arg(self, i);
  return b ? shape_tuple(b) : NULL;
}

static PyObject *net_param_array(NetHandle *self, PyObject *args) {
  Py_ssize_t layer, j;
  int diff = 0;
  if (!PyArg_ParseTuple(args, "nn|p", &layer, &j, &diff)) return NULL;
  cg_blob *b = param_arg(self, layer, j);
  return b ? blob_view((PyObject *)self, b, diff) : NULL;
}

static PyObject *net_param_shape(NetHandle *self, PyObject *args) {
  Py_ssize_t layer, j;
  if (!PyArg_ParseTuple(args, "nn", &layer, &j)) return NULL;
  cg_blob *b = param_arg(self, layer, j);
  return b ? shape_tuple(b) : NULL;
}

static PyObject *net_blob_reshape(NetHandle *self, PyObject *args) {
  Py_ssize_t i;
  PyObject *shape_arg;
  if (!PyArg_ParseTuple(args, "nO", &i, &shape_arg)) return NULL;
  cg_blob *b = blob_arg(self, i);
  if (!b) return NULL;
  PyObject *shape = PySequence_Fast(shape_arg, "shape must be a sequence of ints");
  if (!shape) return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(shape);
  int dims[CG_BLOB_MAX_AXES];
  for (Py_ssize_t k = 0; k < n && k < CG_BLOB_MAX_AXES; k++) {
    long d = PyLong_AsLong(PySequence_Fast_GET_ITEM(shape, k));
    if (d == -1 && PyErr_Occurred()) {
      Py_DECREF(shape);
      return NULL;
    }
    dims[k] = d < INT_MIN ? INT_MIN : d > INT_MAX ? -1 : (int)d; /* out-of-range values fail in the library */
  }
  Py_DECREF(shape);
  if (n > CG_BLOB_MAX_AXES) return cgpy_raise("ShapeError", "a blob has at most %d axes, got %zd", CG_BLOB_MAX_AXES, n);
  if (cgpy_enter(self->busy, "reshape")) return NULL;
  int rc = cg_blob_reshape(b, (int)n, dims);
  *self->busy = 0;
  if (rc) return cgpy_raise_status(rc);
  Py_RETURN_NONE;
}

static PyObject *names_tuple(NetHandle *self, int n, const char *(*name)(const cg_net *, int)) {
  PyObject *t = PyTuple_New(n);
  for (int i = 0; t && i < n; i++) {
    PyObject *s = PyUnicode_FromString(name(self->net, i) ? name(self->net, i) : "");
    if (!s) {
      Py_CLEAR(t);
      break;
    }
    PyTuple_SET_ITEM(t, i, s);
  }
  return t;
}

static const char *blob_name(const cg_net *net, int i) { return cg_net_blob_at(net, i)->name; }
static const char *output_name(const cg_net *net, int i) { return cg_net_output(net, i)->name; }

static PyObject *net_blob_names(NetHandle *self, PyObject *noargs) {
  (void)noargs;
  return check_net(self) ? NULL : names_tuple(self, cg_net_num_blobs(self->net), blob_name);
}

static PyObject *net_output_names(NetHandle *self, PyObject *noargs) {
  (void)noargs;
  return check_net(self) ? NULL : names_tuple(self, cg_net_num_outputs(self->net), output_name);
}

static PyObject *net_layer_names(NetHandle *self, PyObject *noargs) {
  (void)noargs;
  return check_net(self) ? NULL : names_tuple(self, cg_net_num_layers(self->net), cg_net_layer_name);
}

static PyObject *net_layer_types(NetHandle *self, PyObject *noargs) {
  (void)noargs;
  return check_net(self) ? NULL : names_tuple(self, cg_net_num_layers(self->net), cg_net_layer_type);
}

static PyObject *net_layer_param_counts(NetHandle *self, PyObject *noargs) {
  (void)noargs;
  if (check_net(self)) return NULL;
  int n = cg_net_num_layers(self->net);
  PyObject *t = PyTuple_New(n);
  for (int i = 0; t && i < n; i++) PyTuple_SET_ITEM(t, i, PyLong_FromLong(cg_net_layer_num_params(self->net, i)));
  return t;
}

static PyObject *net_name(NetHandle *self, void *closure) {
  (void)closure;
  return check_net(self) ? NULL : PyUnicode_FromString(cg_net_name(self->net));
}

/* forward(start=0, end=-1) -> loss of the layers run: layers start..end (-1: the last), inclusive */
static PyObject *net_forward(NetHandle *self, PyObject *args) {
  int start = 0, end = -1;
  if (!PyArg_ParseTuple(args, "|ii", &start, &end)) return NULL;
  if (check_net(self) || cgpy_enter(self->busy, "forward")) return NULL;
  if (end < 0) end = cg_net_num_layers(self->net) - 1;
  float loss = 0;
  int rc;
  cgpy_prepare_threads();
  CGPY_BEGIN_C
  rc = cg_net_forward_range(self->net, start, end, &loss);
  CGPY_END_C
  *self->busy = 0;
  return rc ? cgpy_raise_status(rc) : PyFloat_FromDouble(loss);
}

/* backward(start=-1, end=0): layers start (-1: the last) down to end, inclusive */
static PyObject *net_backward(NetHandle *self, PyObject *args) {
  int start = -1, end = 0;
  if (!PyArg_ParseTuple(args, "|ii", &start, &end)) return NULL;
  if (check_net(self) || cgpy_enter(self->busy, "backward")) return NULL;
  if (start < 0) start = cg_net_num_layers(self->net) - 1;
  int rc;
  cgpy_prepare_threads();
  CGPY_BEGIN_C
  rc = cg_net_backward_range(self->net, start, end);
  CGPY_END_C
  *self->busy = 0;
  if (rc) return cgpy_raise_status(rc);
  Py_RETURN_NONE;
}

static PyObject *net_reshape(NetHandle *self, PyObject *noargs) {
  (void)noargs;
  if (check_net(self) || cgpy_enter(self->busy, "reshape")) return NULL;
  int rc = cg_net_reshape(self->net);
  *self->busy = 0;
  if (rc) return cgpy_raise_status(rc);
  Py_RETURN_NONE;
}

/* layer_blob_ids(tops) -> per layer, the blob indices of its bottoms (tops=False) or tops */
static PyObject *net_layer_blob_ids(NetHandle *self, PyObject *arg) {
  int tops = PyObject_IsTrue(arg);
  if (tops < 0 || check_net(self)) return NULL;
  int n = cg_net_num_layers(self->net);
  PyObject *t = PyTuple_New(n);
  for (int i = 0; t && i < n; i++) {
    int m = tops ? cg_net_layer_num_tops(self->net, i) : cg_net_layer_num_bottoms(self->net, i);
    PyObject *ids = PyTuple_New(m);
    for (int j = 0; ids && j < m; j++) {
      int id = tops ? cg_net_layer_top_index(self->net, i, j) : cg_net_layer_bottom_index(self->net, i, j);
      PyObject *v = PyLong_FromLong(id);
      if (!v) {
        Py_CLEAR(ids);
        break;
      }
      PyTuple_SET_ITEM(ids, j, v);
    }
    if (!ids) {
      Py_CLEAR(t);
      break;
    }
    PyTuple_SET_ITEM(t, i, ids);
  }
  return t;
}

static PyObject *net_clear_param_diffs(NetHandle *self, PyObject *noargs) {
  (void)noargs;
  if (check_net(self) || cgpy_enter(self->busy, "clear_param_diffs")) return NULL;
  cg_net_clear_param_diffs(self->net);
  *self->busy = 0;
  Py_RETURN_NONE;
}

/* load_weights / save_weights: a path in, the file work without the GIL. */
static PyObject *weights_io(NetHandle *self, PyObject *arg, int save) {
  PyObject *path = NULL;
  if (check_net(self) || !PyUnicode_FSConverter(arg, &path)) return NULL;
  if (cgpy_enter(self->busy, save ? "save" : "copy_from")) {
    Py_DECREF(path);
    return NULL;
  }
  const char *p = PyBytes_AS_STRING(path);
  int rc;
  CGPY_BEGIN_C
  rc = save ? cg_net_save_weights(self->net, p) : cg_net_load_weights(self->net, p);
  CGPY_END_C
  *self->busy = 0;
  Py_DECREF(path);
  if (rc) return cgpy_raise_status(rc);
  Py_RETURN_NONE;
}

static PyObject *net_load_weights(NetHandle *self, PyObject *arg) { return weights_io(self, arg, 0); }
static PyObject *net_save_weights(NetHandle *self, PyObject *arg) { return weights_io(self, arg, 1); }

/* The layer argument of feed/feed_shape: a name, or None for the first MemoryData layer. */
static int layer_arg(PyObject *arg, const char **out) {
  *out = NULL;
  if (arg == Py_None) return 0;
  if (!PyUnicode_Check(arg)) {
    cgpy_raise("DTypeError", "the layer must be a layer name (str) or None, not %s", Py_TYPE(arg)->tp_name);
    return -1;
  }
  *out = PyUnicode_AsUTF8(arg);
  return *out ? 0 : -1;
}

static PyObject *net_feed_shape(NetHandle *self, PyObject *arg) {
  const char *layer;
  if (check_net(self) || layer_arg(arg, &layer)) return NULL;
  cg_feed_shape s;
  int rc = cg_net_feed_shape(self->net, layer, &s);
  if (rc) return cgpy_raise_status(rc);
  return Py_BuildValue("(iiii)", s.batch, s.channels, s.height, s.width);
}

/* Labels: any integer or floating array-like with n elements, as a contiguous float32 array. */
static PyObject *labels_array(PyObject *labels, const char *layer, npy_intp n) {
  PyObject *raw = PyArray_FROM_O(labels);
  if (!raw) return NULL;
  int kind = PyArray_DESCR((PyArrayObject *)raw)->kind;
  if (kind != 'i' && kind != 'u' && kind != 'f') {
    cgpy_raise("DTypeError", "layer '%s': labels must be numbers (a float32 or integer array), got %s", layer,
               PyArray_DESCR((PyArrayObject *)raw)->typeobj->tp_name);
    Py_DECREF(raw);
    return NULL;
  }
  if (PyArray_SIZE((PyArrayObject *)raw) != n) {
    cgpy_raise("ShapeError", "layer '%s': %zd labels for %zd samples (one label per sample)", layer,
               (Py_ssize_t)PyArray_SIZE((PyArrayObject *)raw), (Py_ssize_t)n);
    Py_DECREF(raw);
    return NULL;
  }
  PyObject *out = PyArray_FROM_OTF(raw, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
  Py_DECREF(raw);
  return out;
}

static PyObject *net_feed(NetHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"layer", "data", "labels", NULL};
  PyObject *layer_obj, *data_obj, *labels_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O", kwlist, &layer_obj, &data_obj, &labels_obj)) return NULL;
  const char *layer;
  if (check_net(self) || layer_arg(layer_obj, &layer)) return NULL;
  cg_feed_shape s;
  int rc = cg_net_feed_shape(self->net, layer, &s);
  if (rc) return cgpy_raise_status(rc);
  int index = cg_net_feed_layer(self->net, layer);
  const char *name = cg_net_layer_name(self->net, index);
  if (!PyArray_Check(data_obj))
    return cgpy_raise("DTypeError", "layer '%s': data must be a numpy float32 array of shape (N, %d, %d, %d), not %s",
                      name, s.channels, s.height, s.width, Py_TYPE(data_obj)->tp_name);
  PyArrayObject *given = (PyArrayObject *)data_obj;
  if (PyArray_TYPE(given) != NPY_FLOAT32)
    return cgpy_raise("DTypeError", "layer '%s': data must be float32, got %s (convert with .astype(numpy.float32))",
                      name, PyArray_DESCR(given)->typeobj->tp_name);
  npy_intp *d = PyArray_DIMS(given);
  if (PyArray_NDIM(given) != 4 || d[1] != s.channels || d[2] != s.height || d[3] != s.width) {
    char got[256] = "(";
    for (int i = 0; i < PyArray_NDIM(given) && strlen(got) < 200; i++)
      snprintf(got + strlen(got), sizeof got - strlen(got), i ? ", %zd" : "%zd", (Py_ssize_t)d[i]);
    strcat(got, ")");
    return cgpy_raise("ShapeError", "layer '%s': data must have shape (N, %d, %d, %d) (N x channels x height x width), got %s",
                      name, s.channels, s.height, s.width, got);
  }
  if (d[0] > INT_MAX) return cgpy_raise("ShapeError", "layer '%s': at most %d samples per feed", name, INT_MAX);
  PyObject *data = PyArray_FROM_OTF(data_obj, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY); /* a copy only when strided */
  if (!data) return NULL;
  PyObject *labels = labels_obj == Py_None ? Py_NewRef(Py_None) : labels_array(labels_obj, name, d[0]);
  PyObject *kept = labels ? PyTuple_Pack(2, data, labels) : NULL;
  PyObject *key = PyLong_FromLong(index);
  Py_DECREF(data);
  Py_XDECREF(labels);
  if (!kept || !key || cgpy_enter(self->busy, "feed")) {
    Py_XDECREF(kept);
    Py_XDECREF(key);
    return NULL;
  }
  const float *labels_c = labels == Py_None ? NULL : PyArray_DATA((PyArrayObject *)PyTuple_GET_ITEM(kept, 1));
  rc = cg_net_feed(self->net, layer, PyArray_DATA((PyArrayObject *)PyTuple_GET_ITEM(kept, 0)), labels_c, (int)d[0]);
  *self->busy = 0;
  /* the layer now reads these arrays: hold them until the next feed (or as long as the net) */
  if (!rc && PyDict_SetItem(self->fed, key, kept) < 0) {
    Py_DECREF(key); /* out of memory: leak `kept` rather than let the layer read freed arrays */
    return NULL;
  }
  Py_DECREF(kept);
  Py_DECREF(key);
  if (rc) return cgpy_raise_status(rc);
  Py_RETURN_NONE;
}

static PyObject *net_feed_source(NetHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"layer", "type", "location", "rank_share", "resize", NULL};
  PyObject *layer_obj, *location = NULL;
  const char *type, *layer;
  int rank_share = 0, resize = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "OsO&|pp", kwlist, &layer_obj, &type, PyUnicode_FSConverter, &location,
                                   &rank_share, &resize))
    return NULL;
  if (check_net(self) || layer_arg(layer_obj, &layer) || cgpy_enter(self->busy, "feed_source")) {
    Py_DECREF(location);
    return NULL;
  }
  int rc;
  CGPY_BEGIN_C
  cg_feed_source_options o = {.rank_share = rank_share, .resize = resize};
  rc = cg_net_feed_source(self->net, layer, type, PyBytes_AS_STRING(location), &o);
  CGPY_END_C
  *self->busy = 0;
  Py_DECREF(location);
  if (rc) return cgpy_raise_status(rc);
  /* the layer no longer reads arrays fed before */
  int index = cg_net_feed_layer(self->net, layer);
  PyObject *key = index >= 0 ? PyLong_FromLong(index) : NULL;
  if (key && PyDict_Contains(self->fed, key) == 1) PyDict_DelItem(self->fed, key);
  Py_XDECREF(key);
  PyErr_Clear();
  Py_RETURN_NONE;
}

/* ((id, valid), ...) of the batch a source-fed data layer produced last. */
static PyObject *net_batch_ids(NetHandle *self, PyObject *unused) {
  (void)unused;
  if (check_net(self)) return NULL;
  enum { MAX_IDS = 1 << 16 };
  const char **ids = malloc(MAX_IDS * sizeof *ids);
  bool *valid = malloc(MAX_IDS * sizeof *valid);
  if (!ids || !valid) {
    free(ids), free(valid);
    return PyErr_NoMemory();
  }
  int n = cg_net_batch_ids(self->net, ids, valid, MAX_IDS);
  PyObject *out = n < 0 ? cgpy_raise_status(n) : PyTuple_New(n);
  for (int i = 0; out && i < n; i++) {
    PyObject *item = Py_BuildValue("(sO)", ids[i], valid[i] ? Py_True : Py_False);
    if (!item) Py_CLEAR(out);
    else PyTuple_SET_ITEM(out, i, item);
  }
  free(ids), free(valid);
  return out;
}

static PyObject *net_rank_records(NetHandle *self, PyObject *unused) {
  (void)unused;
  if (check_net(self)) return NULL;
  return PyLong_FromSize_t(cg_net_rank_records(self->net));
}

static PyObject *net_set_profiling(NetHandle *self, PyObject *arg) {
  int on = PyObject_IsTrue(arg);
  if (on < 0 || check_net(self) || cgpy_enter(self->busy, "set_profiling")) return NULL;
  cg_net_set_profiling(self->net, on);
  *self->busy = 0;
  Py_RETURN_NONE;
}

static PyObject *net_layer_times(NetHandle *self, PyObject *noargs) {
  (void)noargs;
  if (check_net(self)) return NULL;
  int n = cg_net_num_layers(self->net);
  PyObject *t = PyTuple_New(n);
  for (int i = 0; t && i < n; i++) {
    double f, b;
    cg_net_layer_times(self->net, i, &f, &b);
    PyTuple_SET_ITEM(t, i, Py_BuildValue("(dd)", f, b));
  }
  return t;
}

static PyMethodDef net_methods[] = {
    {"blob_names", (PyCFunction)net_blob_names, METH_NOARGS, "blob_names() -> tuple of str"},
    {"output_names", (PyCFunction)net_output_names, METH_NOARGS, "output_names() -> tuple of str"},
    {"layer_names", (PyCFunction)net_layer_names, METH_NOARGS, "layer_names() -> tuple of str"},
    {"layer_types", (PyCFunction)net_layer_types, METH_NOARGS, "layer_types() -> tuple of str"},
    {"layer_param_counts", (PyCFunction)net_layer_param_counts, METH_NOARGS, "layer_param_counts() -> tuple of int"},
    {"blob_array", (PyCFunction)net_blob_array, METH_VARARGS, "blob_array(i, diff=False) -> view of blob i"},
    {"blob_shape", (PyCFunction)net_blob_shape, METH_O, "blob_shape(i) -> tuple"},
    {"blob_reshape", (PyCFunction)net_blob_reshape, METH_VARARGS, "blob_reshape(i, shape) -> None"},
    {"param_array", (PyCFunction)net_param_array, METH_VARARGS, "param_array(layer, j, diff=False) -> view"},
    {"param_shape", (PyCFunction)net_param_shape, METH_VARARGS, "param_shape(layer, j) -> tuple"},
    {"forward", (PyCFunction)net_forward, METH_VARARGS, "forward(start=0, end=-1) -> float loss (GIL released)"},
    {"backward", (PyCFunction)net_backward, METH_VARARGS, "backward(start=-1, end=0) -> None (GIL released)"},
    {"reshape", (PyCFunction)net_reshape, METH_NOARGS, "reshape() -> None: every layer to its bottoms' shapes"},
    {"layer_blob_ids", (PyCFunction)net_layer_blob_ids, METH_O, "layer_blob_ids(tops) -> per layer, blob indices"},
    {"clear_param_diffs", (PyCFunction)net_clear_param_diffs, METH_NOARGS, "clear_param_diffs() -> None"},
    {"load_weights", (PyCFunction)net_load_weights, METH_O, "load_weights(path) -> None"},
    {"save_weights", (PyCFunction)net_save_weights, METH_O, "save_weights(path) -> None"},
    {"to_onnx", (PyCFunction)(void (*)(void))cgpy_net_to_onnx, METH_VARARGS | METH_KEYWORDS,
     "to_onnx(path, opset=0, fixed_batch=False) -> tuple of the graph's output names"},
    {"feed_shape", (PyCFunction)net_feed_shape, METH_O, "feed_shape(layer) -> (batch, channels, height, width)"},
    {"feed", (PyCFunction)(void (*)(void))net_feed, METH_VARARGS | METH_KEYWORDS, "feed(layer, data, labels=None) -> None"},
    {"batch_ids", (PyCFunction)net_batch_ids, METH_NOARGS, "batch_ids() -> ((id, valid), ...) of the last batch read"},
    {"rank_records", (PyCFunction)net_rank_records, METH_NOARGS,
     "rank_records() -> records this rank's data layer reads per epoch (per pass, in an exact pass)"},
    {"feed_source", (PyCFunction)(void (*)(void))net_feed_source, METH_VARARGS | METH_KEYWORDS,
     "feed_source(layer, type, location, rank_share=False, resize=False) -> None"},
    {"set_profiling", (PyCFunction)net_set_profiling, METH_O, "set_profiling(on) -> None"},
    {"layer_times", (PyCFunction)net_layer_times, METH_NOARGS, "layer_times() -> tuple of (forward_ms, backward_ms)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef net_getset[] = {
    {"name", (getter)net_name, NULL, "the net's name", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject NetHandle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "caffegrid._caffegrid.NetHandle",
    .tp_doc = "NetHandle(path, phase, level=0, stages=(), seed=0): a caffegrid net (use caffegrid.Net).",
    .tp_basicsize = sizeof(NetHandle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = net_new,
    .tp_init = (initproc)net_init,
    .tp_dealloc = (destructor)net_dealloc,
    .tp_methods = net_methods,
    .tp_getset = net_getset,
};
