/* TcpListener and CommHandle: the C library's TCP communicator seen from Python
 * (for workers no MPI launcher starts, e.g. Spark barrier tasks). Listen, publish
 * host:port through the host program, connect; a SolverHandle given the
 * CommHandle trains data-parallel and keeps it alive. */
#include "_ext.h"

#include <stdlib.h>

static PyObject *listener_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
  (void)args, (void)kwds;
  return type->tp_alloc(type, 0);
}

static void listener_dealloc(TcpListenerHandle *self) {
  cg_comm_tcp_listener_free(self->listener);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static int listener_init(TcpListenerHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"bind_host", "port", NULL};
  const char *host = NULL;
  int port = 0;
  if (self->listener) {
    cgpy_raise("InvalidArgumentError", "TcpListener is already initialised");
    return -1;
  }
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|zi", kwlist, &host, &port)) return -1;
  if (port < 0 || port > 65535) {
    cgpy_raise("InvalidArgumentError", "TcpListener: port %d is not a TCP port", port);
    return -1;
  }
  if (port && host) {
    cgpy_raise("InvalidArgumentError", "TcpListener: give bind_host or port, not both");
    return -1;
  }
  int rc = port ? cg_comm_tcp_listen_port(port, &self->listener) : cg_comm_tcp_listen(host, &self->listener);
  if (rc) {
    cgpy_raise_status(rc);
    return -1;
  }
  return 0;
}

static int check_listener(TcpListenerHandle *self) {
  if (self->listener) return 0;
  cgpy_raise("InvalidArgumentError", "this TcpListener is closed (connect consumes it)");
  return -1;
}

static PyObject *listener_port(TcpListenerHandle *self, void *closure) {
  (void)closure;
  return check_listener(self) ? NULL : PyLong_FromLong(cg_comm_tcp_port(self->listener));
}

/* connect(rank, size, addresses, timeout) -> CommHandle; the listener is closed afterwards either way. */
static PyObject *listener_connect(TcpListenerHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"rank", "size", "addresses", "timeout", NULL};
  int rank, size;
  PyObject *addresses;
  double timeout = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "iiO|d", kwlist, &rank, &size, &addresses, &timeout)) return NULL;
  if (check_listener(self)) return NULL;
  PyObject *seq = PySequence_Fast(addresses, "connect: addresses must be a sequence of 'host:port' strings");
  if (!seq) return NULL;
  if (PySequence_Fast_GET_SIZE(seq) != size || size < 1) {
    Py_DECREF(seq);
    return cgpy_raise("InvalidArgumentError", "connect: %zd addresses for %d ranks", PySequence_Fast_GET_SIZE(seq), size);
  }
  const char **list = calloc((size_t)size, sizeof *list);
  if (!list) {
    Py_DECREF(seq);
    return PyErr_NoMemory();
  }
  for (int i = 0; i < size; i++) {
    list[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
    if (!list[i]) {
      free(list);
      Py_DECREF(seq);
      return NULL;
    }
  }
  CommHandle *h = PyObject_New(CommHandle, &CommHandle_Type);
  if (!h) {
    free(list);
    Py_DECREF(seq);
    return NULL;
  }
  h->comm = NULL;
  cg_tcp_listener *l = self->listener;
  int rc;
  CGPY_BEGIN_C
  rc = cg_comm_tcp_connect(l, rank, size, list, timeout, &h->comm);
  CGPY_END_C
  cg_comm_tcp_listener_free(l);
  self->listener = NULL;
  free(list);
  Py_DECREF(seq);
  if (rc) {
    Py_DECREF(h);
    return cgpy_raise_status(rc);
  }
  return (PyObject *)h;
}

static PyMethodDef listener_methods[] = {
    {"connect", (PyCFunction)(void (*)(void))listener_connect, METH_VARARGS | METH_KEYWORDS,
     "connect(rank, size, addresses, timeout=0) -> CommHandle (GIL released; closes the listener)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef listener_getset[] = {
    {"port", (getter)listener_port, NULL, "the port it listens on", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject TcpListener_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "caffegrid._caffegrid.TcpListener",
    .tp_doc = "TcpListener(bind_host=None, port=0): a listening socket of the TCP communicator.",
    .tp_basicsize = sizeof(TcpListenerHandle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = listener_new,
    .tp_init = (initproc)listener_init,
    .tp_dealloc = (destructor)listener_dealloc,
    .tp_methods = listener_methods,
    .tp_getset = listener_getset,
};

static void comm_dealloc(CommHandle *self) {
  cg_comm_free(self->comm);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *comm_rank(CommHandle *self, void *closure) { return (void)closure, PyLong_FromLong(cg_comm_rank(self->comm)); }
static PyObject *comm_size(CommHandle *self, void *closure) { return (void)closure, PyLong_FromLong(cg_comm_size(self->comm)); }
static PyObject *comm_backend(CommHandle *self, void *closure) {
  return (void)closure, PyUnicode_FromString(cg_comm_backend(self->comm));
}

static PyObject *comm_barrier(CommHandle *self, PyObject *noargs) {
  (void)noargs;
  int rc;
  CGPY_BEGIN_C
  rc = cg_comm_barrier(self->comm);
  CGPY_END_C
  if (rc) return cgpy_raise_status(rc);
  Py_RETURN_NONE;
}

static PyMethodDef comm_methods[] = {
    {"barrier", (PyCFunction)comm_barrier, METH_NOARGS, "barrier() -> None (GIL released)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef comm_getset[] = {
    {"rank", (getter)comm_rank, NULL, "this process's rank", NULL},
    {"size", (getter)comm_size, NULL, "number of ranks", NULL},
    {"backend", (getter)comm_backend, NULL, "\"tcp\"", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject CommHandle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "caffegrid._caffegrid.CommHandle",
    .tp_doc = "A connected communicator (made by TcpListener.connect).",
    .tp_basicsize = sizeof(CommHandle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)comm_dealloc,
    .tp_methods = comm_methods,
    .tp_getset = comm_getset,
};
