/* Shared declarations of the _caffegrid extension: the handle types over the C
 * library (nets, solvers, TCP communicators), error raising, and the OpenMP thread setting. */
#ifndef CAFFEGRID_PY_EXT_H
#define CAFFEGRID_PY_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL caffegrid_ARRAY_API
#ifndef CGPY_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "caffegrid/comm.h"
#include "caffegrid/net.h"
#include "caffegrid/solver.h"

/* A cg_net, owned (owner == NULL) or borrowed from a SolverHandle (owner keeps it alive). */
typedef struct {
  PyObject_HEAD
  cg_net *net;
  PyObject *owner; /* the SolverHandle the net belongs to, or NULL */
  PyObject *fed;   /* dict: layer index -> (data, labels) arrays the net reads; shared with the owner */
  int *busy;       /* set while the net runs without the GIL; the owner's flag when borrowed */
  int own_busy;
} NetHandle;

typedef struct {
  PyObject_HEAD
  cg_solver *solver;
  PyObject *fed;  /* list: one dict per net (train net, then test nets), kept as long as the solver */
  PyObject *comm; /* the CommHandle the solver trains over (borrowed by it), or NULL */
  int busy;
} SolverHandle;

typedef struct {
  PyObject_HEAD
  cg_tcp_listener *listener; /* NULL once connect has consumed it */
} TcpListenerHandle;

/* A connected communicator, owned; a SolverHandle built on it holds a reference. */
typedef struct {
  PyObject_HEAD
  cg_comm *comm;
} CommHandle;

extern PyTypeObject NetHandle_Type;
extern PyTypeObject SolverHandle_Type;
extern PyTypeObject TcpListener_Type;
extern PyTypeObject CommHandle_Type;
extern PyTypeObject SourceReader_Type;
extern PyTypeObject RecordsWriter_Type;

/* Raises the caffegrid exception for status `code` with the C library's message; returns NULL. */
PyObject *cgpy_raise_status(int code);
/* Raises a caffegrid exception class by name (e.g. "DTypeError") with a formatted message; returns NULL. */
PyObject *cgpy_raise(const char *class_name, const char *fmt, ...);
/* Marks *busy for a call that releases the GIL; raises BusyError (returns -1) when already set. */
int cgpy_enter(int *busy, const char *what);
/* Sets this thread's OpenMP thread count as the CLI does, before running C code. */
void cgpy_prepare_threads(void);

/* C code runs without the GIL and with the signals Python handles (SIGINT...) blocked
 * in the calling thread, so every thread the library starts meanwhile (OpenMP, oneDNN,
 * prefetch) inherits them blocked: a Ctrl-C reaches Python's own thread, never a
 * compute thread in the middle of its work (the CLI does the same with a signal
 * thread). A signal that arrives meanwhile waits until the call ends, or until the
 * solver's poll between iterations (cgpy_take_signals). */
#include <signal.h>
void cgpy_block_signals(sigset_t *old);
void cgpy_restore_signals(const sigset_t *old);
/* Lets pending blocked signals reach Python's handlers now (from a thread holding the GIL). */
void cgpy_take_signals(void);
#define CGPY_BEGIN_C                  \
  {                                   \
    sigset_t cgpy_old_mask_;          \
    cgpy_block_signals(&cgpy_old_mask_); \
    Py_BEGIN_ALLOW_THREADS
#define CGPY_END_C                    \
    Py_END_ALLOW_THREADS              \
    cgpy_restore_signals(&cgpy_old_mask_); \
  }

/* _caffegrid.decode_image(data, name, color=0, height=0, width=0) (in _data.c). */
PyObject *cgpy_decode_image(PyObject *self, PyObject *args, PyObject *kwds);

/* NetHandle.to_onnx (_onnx.c). */
PyObject *cgpy_net_to_onnx(NetHandle *self, PyObject *args, PyObject *kwds);
/* A NetHandle over a solver's net (borrowed; keeps `owner` alive). */
PyObject *cgpy_net_borrowed(cg_net *net, PyObject *owner, PyObject *fed, int *busy);

#endif
