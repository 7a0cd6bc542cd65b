/* Records as pixels for Spark tasks: the C library's sources (LMDB, image lists,
 * SequenceFiles, HDF5) read record by record, and JPEG/PNG bytes decoded, both
 * through cg_transform_load — the code the Data layers use (Datum unpacked,
 * images decoded as OpenCV would, colour forced, cv::resize'd). */
#include "_ext.h"

#include <limits.h>

#include "caffegrid/source.h"
#include "caffegrid/transform.h"

typedef struct {
  PyObject_HEAD
  cg_source *source;
  cg_pixels px; /* reused between reads */
} SourceReaderHandle;

static int color_mode(int color, cg_color_mode *out) {
  if (color < CG_COLOR_NATIVE || color > CG_COLOR_GRAY) {
    cgpy_raise("InvalidArgumentError", "colour mode %d: use 0 (as stored), 1 (BGR) or 2 (grey)", color);
    return -1;
  }
  *out = (cg_color_mode)color;
  return 0;
}

/* Loads rec into px with the colour and size asked (0 x 0: as stored); -1 with an exception set on error. */
static int load(const cg_record *rec, cg_pixels *px, int color, int height, int width) {
  cg_transform_options o = {0};
  if (color_mode(color, &o.color)) return -1;
  if ((height > 0) != (width > 0) || height < 0 || width < 0) {
    cgpy_raise("InvalidArgumentError", "resize to %dx%d: give both height and width (or neither)", height, width);
    return -1;
  }
  o.resize_height = height, o.resize_width = width;
  cg_transform *t;
  int rc = cg_transform_new(&o, false, &t);
  if (!rc) rc = cg_transform_load(t, rec, px, rec->id);
  cg_transform_delete(t);
  if (rc) {
    cgpy_raise_status(rc);
    return -1;
  }
  return 0;
}

/* (channels, height, width, pixel bytes, is_float): uint8 or float32 (native order) channel-first values. */
static PyObject *pixels_tuple(const cg_pixels *px) {
  size_t count = (size_t)px->channels * (size_t)px->height * (size_t)px->width;
  PyObject *bytes = px->is_float ? PyBytes_FromStringAndSize((const char *)px->floats, (Py_ssize_t)(count * sizeof(float)))
                                 : PyBytes_FromStringAndSize((const char *)px->img.data, (Py_ssize_t)count);
  if (!bytes) return NULL;
  return Py_BuildValue("iiiNO", px->channels, px->height, px->width, bytes, px->is_float ? Py_True : Py_False);
}

PyObject *cgpy_decode_image(PyObject *self, PyObject *args, PyObject *kwds) {
  (void)self;
  static char *kwlist[] = {"data", "name", "color", "height", "width", NULL};
  Py_buffer data;
  const char *name;
  int color = 0, height = 0, width = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*s|iii", kwlist, &data, &name, &color, &height, &width)) return NULL;
  cg_record rec = {.kind = CG_RECORD_IMAGE, .id = name, .bytes = data.buf, .num_bytes = (size_t)data.len};
  cg_pixels px = {0};
  PyObject *result = load(&rec, &px, color, height, width) ? NULL : pixels_tuple(&px);
  cg_pixels_free(&px);
  PyBuffer_Release(&data);
  return result;
}

static PyObject *reader_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
  (void)args, (void)kwds;
  return type->tp_alloc(type, 0);
}

static void reader_dealloc(SourceReaderHandle *self) {
  cg_source_close(self->source);
  cg_pixels_free(&self->px);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static int reader_init(SourceReaderHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"type", "location", NULL};
  const char *type;
  PyObject *location = NULL;
  if (self->source) {
    cgpy_raise("InvalidArgumentError", "SourceReader is already open");
    return -1;
  }
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "sO&", kwlist, &type, PyUnicode_FSConverter, &location)) return -1;
  int rc = cg_source_open(type, PyBytes_AS_STRING(location), NULL, &self->source);
  Py_DECREF(location);
  if (rc) {
    self->source = NULL;
    cgpy_raise_status(rc);
    return -1;
  }
  return 0;
}

static int check_reader(SourceReaderHandle *self) {
  if (self->source) return 0;
  cgpy_raise("InvalidArgumentError", "this SourceReader holds no source (its constructor failed)");
  return -1;
}

static PyObject *reader_read(SourceReaderHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"index", "color", "height", "width", NULL};
  Py_ssize_t index;
  int color = 0, height = 0, width = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|iii", kwlist, &index, &color, &height, &width)) return NULL;
  if (check_reader(self)) return NULL;
  if (index < 0 || (size_t)index >= cg_source_count(self->source))
    return cgpy_raise("InvalidArgumentError", "%s '%s': record %zd asked for, it holds %zu", cg_source_type(self->source),
                      cg_source_location(self->source), index, cg_source_count(self->source));
  cg_record rec;
  int rc = cg_source_get(self->source, (size_t)index, &rec);
  if (rc) return cgpy_raise_status(rc);
  PyObject *id = PyUnicode_DecodeUTF8(rec.id, (Py_ssize_t)strlen(rec.id), "replace");
  if (!id) return NULL;
  if (load(&rec, &self->px, color, height, width)) {
    Py_DECREF(id);
    return NULL;
  }
  PyObject *pixels = pixels_tuple(&self->px);
  if (!pixels) {
    Py_DECREF(id);
    return NULL;
  }
  PyObject *label = self->px.has_label ? PyFloat_FromDouble(self->px.label) : Py_NewRef(Py_None);
  return Py_BuildValue("(NN)N", id, label, pixels);
}

static PyObject *reader_count(SourceReaderHandle *self, void *closure) {
  (void)closure;
  return check_reader(self) ? NULL : PyLong_FromSize_t(cg_source_count(self->source));
}

static PyMethodDef reader_methods[] = {
    {"read", (PyCFunction)(void (*)(void))reader_read, METH_VARARGS | METH_KEYWORDS,
     "read(index, color=0, height=0, width=0) -> ((id, label or None), (channels, height, width, bytes, is_float))"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef reader_getset[] = {
    {"count", (getter)reader_count, NULL, "number of records", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject SourceReader_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "caffegrid._caffegrid.SourceReader",
    .tp_doc = "SourceReader(type, location): records of an lmdb / image_list / seqfile / hdf5 source as pixels.",
    .tp_basicsize = sizeof(SourceReaderHandle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = reader_new,
    .tp_init = (initproc)reader_init,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_methods = reader_methods,
    .tp_getset = reader_getset,
};
