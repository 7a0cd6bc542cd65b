/* RecordsWriter: rows a Spark task was handed (Arrow columns: ids, labels, bytes or
 * float values, optional per-row encoded flag and shape) written to a local records
 * file (caffegrid/records_file.h) in one C loop: no Python object per row. Each
 * row's kind is decided here: an encoded image, C*H*W uint8 pixels, or C*H*W
 * float32 values (given as values, or as 4*C*H*W little-endian bytes). */
#include "_ext.h"

#include <stdint.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/records_file.h"

typedef struct {
  PyObject_HEAD
  cg_records_writer *writer;
} RecordsWriterHandle;

static PyObject *writer_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
  (void)args, (void)kwds;
  return type->tp_alloc(type, 0);
}

static void writer_dealloc(RecordsWriterHandle *self) {
  cg_records_writer_abort(self->writer);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static int writer_init(RecordsWriterHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"path", NULL};
  PyObject *path = NULL;
  if (self->writer) {
    cgpy_raise("InvalidArgumentError", "RecordsWriter is already open");
    return -1;
  }
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&", kwlist, PyUnicode_FSConverter, &path)) return -1;
  int rc = cg_records_writer_open(PyBytes_AS_STRING(path), &self->writer);
  Py_DECREF(path);
  if (rc) {
    self->writer = NULL;
    cgpy_raise_status(rc);
    return -1;
  }
  return 0;
}

static int check_writer(RecordsWriterHandle *self) {
  if (self->writer) return 0;
  cgpy_raise("InvalidArgumentError", "this RecordsWriter is closed");
  return -1;
}

/* A contiguous array of `type` with `n` elements (n < 0: any), or NULL with an exception. */
static PyArrayObject *array_of(PyObject *obj, int type, npy_intp n, const char *what) {
  PyArrayObject *a = (PyArrayObject *)PyArray_FROM_OTF(obj, type, NPY_ARRAY_IN_ARRAY);
  if (!a) return NULL;
  if (n >= 0 && PyArray_SIZE(a) != n) {
    cgpy_raise("ShapeError", "%s: %zd values, expected %zd", what, (Py_ssize_t)PyArray_SIZE(a), (Py_ssize_t)n);
    Py_DECREF(a);
    return NULL;
  }
  return a;
}

typedef struct rows {
  npy_intp n;
  const int64_t *id_off, *data_off;
  const char *ids;
  const uint8_t *data;
  size_t ids_len, data_len;
  const double *labels;  /* NULL: no labels */
  const uint8_t *encoded; /* NULL: none encoded */
  const int32_t *shapes;  /* n x 3, or NULL: `shape` for every row */
  int shape[3];
  bool floats;            /* data holds float32 values; offsets count values */
} rows;

/* Writes row i; its id is copied into `id` (NUL-terminated, truncated to fit). */
static int add_row(cg_records_writer *w, const rows *r, npy_intp i, char *id, size_t id_cap) {
  int64_t a = r->id_off[i], b = r->id_off[i + 1];
  if (a < 0 || b < a || (uint64_t)b > r->ids_len)
    return cg_error(CG_ERR_INVALID, "row %zd: its id's offsets %lld..%lld lie outside the ids", (Py_ssize_t)i,
                    (long long)a, (long long)b);
  size_t len = (size_t)(b - a) < id_cap - 1 ? (size_t)(b - a) : id_cap - 1;
  memcpy(id, r->ids + a, len);
  id[len] = 0;
  int64_t s = r->data_off[i], e = r->data_off[i + 1];
  size_t unit = r->floats ? sizeof(float) : 1;
  if (s < 0 || e < s || (uint64_t)e * unit > r->data_len)
    return cg_error(CG_ERR_INVALID, "row '%s': its data offsets lie outside the data", id);
  const int32_t *shape = r->shapes ? r->shapes + 3 * i : r->shape;
  size_t values = (size_t)(shape[0] > 0 ? shape[0] : 0) * (size_t)(shape[1] > 0 ? shape[1] : 0) *
                  (size_t)(shape[2] > 0 ? shape[2] : 0);
  size_t count = (size_t)(e - s);
  cg_record rec = {.id = id, .label = r->labels ? (float)r->labels[i] : 0, .has_label = r->labels != NULL,
                   .channels = shape[0], .height = shape[1], .width = shape[2]};
  const uint8_t *p = r->data + (size_t)s * unit;
  if (r->encoded && r->encoded[i]) {
    rec.kind = CG_RECORD_IMAGE, rec.bytes = p, rec.num_bytes = count;
    rec.channels = rec.height = rec.width = 0;
  } else if (r->floats && count == values) {
    rec.kind = CG_RECORD_FLOATS, rec.floats = (const float *)p, rec.num_floats = count;
  } else if (!r->floats && count == values) {
    rec.kind = CG_RECORD_PIXELS, rec.bytes = p, rec.num_bytes = count;
  } else if (!r->floats && count == 4 * values && ((uintptr_t)p % sizeof(float)) == 0) {
    rec.kind = CG_RECORD_FLOATS, rec.floats = (const float *)p, rec.num_floats = values;
  } else if (!r->floats && count == 4 * values) {
    return cg_error(CG_ERR_INVALID, "row '%s': its float32 bytes are not 4-byte aligned", id);
  } else if (r->floats) {
    return cg_error(CG_ERR_SHAPE, "row '%s': %zu values, its shape %dx%dx%d takes %zu", id, count, shape[0], shape[1],
                    shape[2], values);
  } else {
    return cg_error(CG_ERR_SHAPE, "row '%s': %zu bytes of data; its shape %dx%dx%d takes %zu uint8 pixels (%zu bytes) or "
                    "%zu float32 values (%zu bytes), or mark it encoded",
                    id, count, shape[0], shape[1], shape[2], values, values, values, 4 * values);
  }
  return cg_records_writer_add(w, &rec);
}

static PyObject *writer_add_rows(RecordsWriterHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"id_offsets", "ids", "data_offsets", "data", "shape", "labels", "encoded", "shapes",
                           "floats", NULL};
  PyObject *id_off_o, *data_off_o, *labels_o = Py_None, *encoded_o = Py_None, *shapes_o = Py_None;
  Py_buffer ids, data;
  rows r = {0};
  int floats = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oy*Oy*(iii)|OOOp", kwlist, &id_off_o, &ids, &data_off_o, &data,
                                   &r.shape[0], &r.shape[1], &r.shape[2], &labels_o, &encoded_o, &shapes_o, &floats))
    return NULL;
  PyArrayObject *id_off = NULL, *data_off = NULL, *labels = NULL, *encoded = NULL, *shapes = NULL;
  PyObject *result = NULL;
  if (check_writer(self)) goto done;
  id_off = array_of(id_off_o, NPY_INT64, -1, "id offsets");
  if (!id_off) goto done;
  r.n = PyArray_SIZE(id_off) - 1;
  if (r.n < 0) {
    cgpy_raise("ShapeError", "id offsets: none given (n rows take n + 1)");
    goto done;
  }
  data_off = array_of(data_off_o, NPY_INT64, r.n + 1, "data offsets");
  if (!data_off) goto done;
  if (labels_o != Py_None && !(labels = array_of(labels_o, NPY_FLOAT64, r.n, "labels"))) goto done;
  if (encoded_o != Py_None && !(encoded = array_of(encoded_o, NPY_UINT8, r.n, "encoded flags"))) goto done;
  if (shapes_o != Py_None && !(shapes = array_of(shapes_o, NPY_INT32, 3 * r.n, "shapes (channels, height, width)")))
    goto done;
  r.id_off = PyArray_DATA(id_off), r.data_off = PyArray_DATA(data_off);
  r.ids = ids.buf, r.ids_len = (size_t)ids.len, r.data = data.buf, r.data_len = (size_t)data.len;
  r.labels = labels ? PyArray_DATA(labels) : NULL;
  r.encoded = encoded ? PyArray_DATA(encoded) : NULL;
  r.shapes = shapes ? PyArray_DATA(shapes) : NULL;
  r.floats = floats;
  int rc = CG_OK;
  char id[1024];
  CGPY_BEGIN_C
  for (npy_intp i = 0; i < r.n && !rc; i++) rc = add_row(self->writer, &r, i, id, sizeof id);
  CGPY_END_C
  if (rc) cgpy_raise_status(rc);
  else result = PyLong_FromSize_t(cg_records_writer_count(self->writer));
done:
  Py_XDECREF(id_off);
  Py_XDECREF(data_off);
  Py_XDECREF(labels);
  Py_XDECREF(encoded);
  Py_XDECREF(shapes);
  PyBuffer_Release(&ids);
  PyBuffer_Release(&data);
  return result;
}

static PyObject *writer_close(RecordsWriterHandle *self, PyObject *unused) {
  (void)unused;
  if (check_writer(self)) return NULL;
  cg_records_writer *w = self->writer;
  self->writer = NULL;
  int rc = cg_records_writer_close(w);
  if (rc) return cgpy_raise_status(rc);
  Py_RETURN_NONE;
}

static PyObject *writer_count(RecordsWriterHandle *self, void *closure) {
  (void)closure;
  return check_writer(self) ? NULL : PyLong_FromSize_t(cg_records_writer_count(self->writer));
}

static PyMethodDef writer_methods[] = {
    {"add_rows", (PyCFunction)(void (*)(void))writer_add_rows, METH_VARARGS | METH_KEYWORDS,
     "add_rows(id_offsets, ids, data_offsets, data, shape, labels=None, encoded=None, shapes=None, floats=False) -> "
     "records written so far. Arrow's layout: n + 1 offsets into the ids' UTF-8 bytes and into the data (bytes, or "
     "float32 values with floats=True); shape (C, H, W) unless shapes gives one per row."},
    {"close", (PyCFunction)writer_close, METH_NOARGS, "writes the index and closes the file"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef writer_getset[] = {
    {"count", (getter)writer_count, NULL, "records written so far", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject RecordsWriter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "caffegrid._caffegrid.RecordsWriter",
    .tp_doc = "RecordsWriter(path): a local records file of rows, read back by Net.feed_source(..., 'records', path).",
    .tp_basicsize = sizeof(RecordsWriterHandle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = writer_new,
    .tp_init = (initproc)writer_init,
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_methods = writer_methods,
    .tp_getset = writer_getset,
};
