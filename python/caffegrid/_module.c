/* The _caffegrid module: its functions, caffegrid exceptions raised with the C
 * library's messages (classes from caffegrid/_errors.py), and the CLI's OpenMP
 * default (the math's thread count unless OMP_NUM_THREADS is set). */
#define CGPY_IMPORT_ARRAY
#include "_ext.h"

#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/data.h"
#include "caffegrid/environment.h"
#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "caffegrid/net.h"
#include "caffegrid/solver.h"
#include "caffegrid/runtime.h"

static PyObject *errors_module; /* caffegrid._errors, for the exception classes */
static int omp_threads;         /* > 0: set on the calling thread before each C call */

static PyObject *error_class(const char *name) {
  PyObject *cls = PyObject_GetAttrString(errors_module, name);
  if (!cls) {
    PyErr_Clear();
    cls = PyObject_GetAttrString(errors_module, "Error");
  }
  return cls;
}

/* Raises an instance of `cls` carrying `message` (decoded leniently: paths may hold any bytes). */
static PyObject *raise_with(PyObject *cls, const char *message, int code) {
  PyObject *text = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
  PyObject *exc = text ? PyObject_CallOneArg(cls, text) : NULL;
  Py_XDECREF(text);
  if (exc && code) { /* the class's own code unless the C library said something more precise */
    PyObject *value = PyLong_FromLong(code);
    if (!value || PyObject_SetAttrString(exc, "code", value) < 0) Py_CLEAR(exc);
    Py_XDECREF(value);
  }
  if (exc) {
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
  }
  return NULL;
}

PyObject *cgpy_raise_status(int code) {
  const char *message = cg_error_message();
  if (!message || !*message) message = cg_status_name(code);
  PyObject *table = PyObject_GetAttrString(errors_module, "BY_CODE");
  PyObject *key = PyLong_FromLong(code);
  PyObject *cls = table && key ? PyDict_GetItemWithError(table, key) : NULL;
  Py_XINCREF(cls);
  Py_XDECREF(table);
  Py_XDECREF(key);
  PyErr_Clear();
  if (!cls) cls = error_class("Error");
  if (!cls) return NULL;
  raise_with(cls, message, code);
  Py_DECREF(cls);
  return NULL;
}

PyObject *cgpy_raise(const char *class_name, const char *fmt, ...) {
  char message[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  PyObject *cls = error_class(class_name);
  if (!cls) return NULL;
  raise_with(cls, message, 0);
  Py_DECREF(cls);
  return NULL;
}

int cgpy_enter(int *busy, const char *what) {
  if (*busy) {
    cgpy_raise("BusyError", "%s: this net or solver is running in another thread; wait for that call to return", what);
    return -1;
  }
  *busy = 1;
  return 0;
}

static void handled_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGHUP);
  sigaddset(set, SIGUSR1);
  sigaddset(set, SIGUSR2);
}

void cgpy_block_signals(sigset_t *old) {
  sigset_t set;
  handled_signals(&set);
  pthread_sigmask(SIG_BLOCK, &set, old);
}

void cgpy_restore_signals(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

void cgpy_take_signals(void) {
  sigset_t set, old;
  handled_signals(&set);
  pthread_sigmask(SIG_UNBLOCK, &set, &old); /* a pending one is delivered here, to Python's C handler */
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void cgpy_prepare_threads(void) {
  if (omp_threads > 0) omp_set_num_threads(omp_threads);
}

static PyObject *status_codes(PyObject *self, PyObject *noargs) {
  (void)self, (void)noargs;
  return Py_BuildValue("("
#define CG_STATUS_FORMAT(name, value, text) "(sis)"
                       CG_STATUS_LIST(CG_STATUS_FORMAT)
#undef CG_STATUS_FORMAT
                       ")"
#define CG_STATUS_ARGS(name, value, text) , #name, value, text
                       CG_STATUS_LIST(CG_STATUS_ARGS)
#undef CG_STATUS_ARGS
  );
}

static PyObject *set_log_quiet(PyObject *self, PyObject *arg) {
  (void)self;
  int quiet = PyObject_IsTrue(arg);
  if (quiet < 0) return NULL;
  cg_log_set_quiet(quiet);
  Py_RETURN_NONE;
}

/* The library's log lines to stderr and also to a file descriptor (a Spark task's
 * connection to the driver, which shows rank 0's progress while it trains). */
static int tee_fd = -1;

static void tee_sink(const char *line, void *user) {
  (void)user;
  fputs(line, stderr);
  int fd = __atomic_load_n(&tee_fd, __ATOMIC_RELAXED);
  if (fd < 0) return;
  size_t len = strlen(line);
  for (size_t done = 0; done < len;) { /* a lost listener only loses the copy (Python ignores SIGPIPE) */
    ssize_t w = write(fd, line + done, len - done);
    if (w <= 0) break;
    done += (size_t)w;
  }
}

static PyObject *set_log_tee(PyObject *self, PyObject *arg) {
  (void)self;
  long fd = PyLong_AsLong(arg);
  if (fd == -1 && PyErr_Occurred()) return NULL;
  __atomic_store_n(&tee_fd, (int)fd, __ATOMIC_RELAXED);
  cg_log_set_sink(fd >= 0 ? tee_sink : NULL, NULL);
  Py_RETURN_NONE;
}

/* A thread count from Python into *n; 0 with the exception set when it is not one. */
static int thread_count(PyObject *arg, const char *what, int *n) {
  long v = PyLong_AsLong(arg);
  if (v == -1 && PyErr_Occurred()) return 0;
  if (v < 1 || v > 4096) {
    cgpy_raise("InvalidArgumentError", "%s: %ld is not a thread count (1 or more)", what, v);
    return 0;
  }
  *n = (int)v;
  return 1;
}

static PyObject *set_num_threads(PyObject *self, PyObject *arg) {
  (void)self;
  if (!thread_count(arg, "set_num_threads", &omp_threads)) return NULL;
  Py_RETURN_NONE;
}

static PyObject *set_math_threads(PyObject *self, PyObject *arg) {
  (void)self;
  int n;
  if (!thread_count(arg, "set_math_threads", &n)) return NULL;
  cg_math_threads_set(n);
  Py_RETURN_NONE;
}

static PyObject *get_math_threads(PyObject *self, PyObject *noargs) {
  (void)self, (void)noargs;
  return PyLong_FromLong(cg_math_threads());
}

static PyObject *get_num_threads(PyObject *self, PyObject *noargs) {
  (void)self, (void)noargs;
  cgpy_prepare_threads();
  return PyLong_FromLong(omp_get_max_threads());
}

/* data_source_type(path) -> "lmdb" | "seqfile" | "hdf5" | "image_list", as the library tells them apart */
static PyObject *data_source_type(PyObject *self, PyObject *arg) {
  (void)self;
  PyObject *path = NULL;
  if (!PyUnicode_FSConverter(arg, &path)) return NULL;
  cg_data_kind kind;
  int rc;
  CGPY_BEGIN_C
  rc = cg_data_kind_of(PyBytes_AS_STRING(path), &kind);
  CGPY_END_C
  PyObject *out = NULL;
  if (rc) cgpy_raise_status(rc);
  else if (!cg_data_source_type(kind))
    cgpy_raise("InvalidArgumentError", "'%s' is not a data source (an LMDB, a SequenceFile or a folder of them, an HDF5 "
               "file or list, or an image list)", PyBytes_AS_STRING(path));
  else out = PyUnicode_FromString(cg_data_source_type(kind));
  Py_DECREF(path);
  return out;
}

/* memory_data_info(text, source_name, phase) -> dict: what the library reads of the
 * MemoryData layer `phase` includes (caffegrid/net.h cg_net_text_memory_data) */
static PyObject *memory_data_info(PyObject *self, PyObject *args) {
  (void)self;
  const char *text, *name;
  Py_ssize_t len;
  int phase;
  if (!PyArg_ParseTuple(args, "s#si", &text, &len, &name, &phase)) return NULL;
  cg_memory_data_info m;
  int rc = cg_net_text_memory_data(text, (size_t)len, name, phase, &m);
  if (rc) return cgpy_raise_status(rc);
  PyObject *means = PyTuple_New(m.num_mean_values < 4 ? m.num_mean_values : 4);
  for (int i = 0; means && i < PyTuple_GET_SIZE(means); i++) PyTuple_SET_ITEM(means, i, PyFloat_FromDouble(m.mean_values[i]));
  if (!means) return NULL;
  return Py_BuildValue("{s:s,s:i,s:i,s:i,s:i,s:s,s:s,s:O,s:d,s:i,s:O,s:O,s:O,s:s,s:i,s:N}", "layer", m.layer,
                       "batch_size", m.batch_size, "channels", m.channels, "height", m.height, "width", m.width,
                       "source", m.source, "source_class", m.source_class, "image_encoded",
                       m.image_encoded ? Py_True : Py_False, "scale", (double)m.scale, "crop_size", m.crop_size,
                       "mirror", m.mirror ? Py_True : Py_False, "force_color", m.force_color ? Py_True : Py_False,
                       "force_gray", m.force_gray ? Py_True : Py_False, "mean_file", m.mean_file, "num_mean_values",
                       m.num_mean_values, "mean_values", means);
}

/* solver_info(text, source_name) -> dict: the solver fields a host program plans with
 * (caffegrid/solver.h cg_solver_text_info) */
static PyObject *solver_info(PyObject *self, PyObject *args) {
  (void)self;
  const char *text, *name;
  Py_ssize_t len;
  if (!PyArg_ParseTuple(args, "s#s", &text, &len, &name)) return NULL;
  cg_solver_info s;
  int rc = cg_solver_text_info(text, (size_t)len, name, &s);
  if (rc) return cgpy_raise_status(rc);
  return Py_BuildValue("{s:s,s:s,s:l,s:i,s:i,s:i,s:i,s:O}", "net", s.net, "snapshot_prefix", s.snapshot_prefix,
                       "max_iter", s.max_iter, "snapshot", s.snapshot, "test_interval", s.test_interval, "iter_size",
                       s.iter_size, "test_iter", s.test_iter, "test_initialization",
                       s.test_initialization ? Py_True : Py_False);
}

/* solver_net(solver_path, phase) -> str: the net file the solver names for that phase, resolved
 * as the solver resolves it (caffegrid/solver.h cg_solver_file_net) */
static PyObject *solver_net(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *path = NULL;
  int phase;
  if (!PyArg_ParseTuple(args, "O&i", PyUnicode_FSConverter, &path, &phase)) return NULL;
  char *net = NULL;
  int rc = cg_solver_file_net(PyBytes_AS_STRING(path), phase, &net, NULL);
  Py_DECREF(path);
  if (rc) return cgpy_raise_status(rc);
  PyObject *out = PyUnicode_DecodeFSDefault(net);
  free(net);
  return out;
}

/* prefix_lock(prefix, solver_name) -> int: PREFIX.lock held for this process (caffegrid/solver.h
 * cg_solver_prefix_lock), -1 when the prefix's folder does not exist; prefix_unlock(fd) releases it */
static PyObject *prefix_lock(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *prefix = NULL;
  const char *name;
  if (!PyArg_ParseTuple(args, "O&s", PyUnicode_FSConverter, &prefix, &name)) return NULL;
  int fd = -1, rc = cg_solver_prefix_lock(PyBytes_AS_STRING(prefix), name, &fd);
  Py_DECREF(prefix);
  if (rc) return cgpy_raise_status(rc);
  return PyLong_FromLong(fd);
}

static PyObject *prefix_unlock(PyObject *self, PyObject *arg) {
  (void)self;
  long fd = PyLong_AsLong(arg);
  if (fd == -1 && PyErr_Occurred()) return NULL;
  cg_solver_prefix_unlock((int)fd);
  Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"prefix_lock", prefix_lock, METH_VARARGS,
     "prefix_lock(prefix, solver_name) -> int: one training run per snapshot prefix (PREFIX.lock), -1 without its folder"},
    {"prefix_unlock", prefix_unlock, METH_O, "prefix_unlock(fd) -> None: releases prefix_lock's lock"},
    {"solver_net", solver_net, METH_VARARGS,
     "solver_net(solver_path, phase) -> str: the net file a solver names for phase 0 (TRAIN) or 1 (TEST)"},
    {"solver_info", solver_info, METH_VARARGS,
     "solver_info(text, source_name) -> dict: net, snapshot_prefix, max_iter, snapshot, test_interval, iter_size, "
     "test_iter, test_initialization as the library reads them"},
    {"memory_data_info", memory_data_info, METH_VARARGS,
     "memory_data_info(text, source_name, phase) -> dict: the MemoryData layer a phase feeds, as the library reads it"},
    {"data_source_type", data_source_type, METH_O,
     "data_source_type(path) -> str: the source type that reads it (lmdb, seqfile, hdf5, image_list)"},
    {"status_codes", status_codes, METH_NOARGS, "status_codes() -> tuple of (name, value, text): the C library's status list."},
    {"set_log_quiet", set_log_quiet, METH_O, "set_log_quiet(quiet) -> None: silence the library's INFO log lines."},
    {"set_log_tee", set_log_tee, METH_O,
     "set_log_tee(fd) -> None: log lines also to this file descriptor (-1: stderr only)."},
    {"set_num_threads", set_num_threads, METH_O, "set_num_threads(n) -> None: OpenMP threads for caffegrid's own loops."},
    {"get_num_threads", get_num_threads, METH_NOARGS, "get_num_threads() -> int: OpenMP threads caffegrid's loops use."},
    {"set_math_threads", set_math_threads, METH_O,
     "set_math_threads(n) -> None: threads for the convolutions and gemms of nets built from now on."},
    {"get_math_threads", get_math_threads, METH_NOARGS, "get_math_threads() -> int: threads the math uses."},
    {"decode_image", (PyCFunction)(void (*)(void))cgpy_decode_image, METH_VARARGS | METH_KEYWORDS,
     "decode_image(data, name, color=0, height=0, width=0) -> (channels, height, width, bytes, is_float): a JPEG or "
     "PNG as uint8 channel-first pixels (BGR or grey), colour forced (0 as stored, 1 BGR, 2 grey) and resized when asked"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_caffegrid", "Low-level handles over the caffegrid C library (use the caffegrid package).",
    -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__caffegrid(void) {
  import_array();
  errors_module = PyImport_ImportModule("caffegrid._errors");
  if (!errors_module) return NULL;
  /* as tools/caffegrid.c: our own loops (pooling, LRN, single-channel convolution) on
   * as many threads as the math, one pool for both */
  if (!getenv("OMP_NUM_THREADS")) omp_threads = cg_math_threads();
  cg_env_configure_runtime(); /* CAFFEGRID_CONV, CAFFEGRID_GEMM, CAFFEGRID_DENORMALS, as the CLI */
  PyTypeObject *types[] = {&NetHandle_Type, &SolverHandle_Type, &TcpListener_Type, &CommHandle_Type, &SourceReader_Type,
                           &RecordsWriter_Type};
  const char *names[] = {"NetHandle", "SolverHandle", "TcpListener", "CommHandle", "SourceReader", "RecordsWriter"};
  for (size_t i = 0; i < sizeof types / sizeof *types; i++)
    if (PyType_Ready(types[i]) < 0) return NULL;
  PyObject *m = PyModule_Create(&module_def);
  if (!m) return NULL;
  for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
    Py_INCREF(types[i]);
    if (PyModule_AddObject(m, names[i], (PyObject *)types[i]) < 0) {
      Py_DECREF(types[i]);
      Py_DECREF(m);
      return NULL;
    }
  }
  return m;
}
