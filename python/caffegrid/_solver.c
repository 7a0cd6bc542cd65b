/* SolverHandle: one cg_solver seen from Python. Its nets come out as borrowed
 * NetHandles that keep the solver alive; step/solve/snapshot/restore run
 * without the GIL, and the solver and its nets share one busy flag. */
#include "_ext.h"

#include <limits.h>

#include "caffegrid/environment.h"

static PyObject *solver_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
  (void)args, (void)kwds;
  return type->tp_alloc(type, 0);
}

static void solver_dealloc(SolverHandle *self) {
  cg_solver_free(self->solver); /* before `fed`: its nets' layers point into those arrays */
  self->solver = NULL;
  Py_CLEAR(self->fed);
  Py_CLEAR(self->comm); /* after the solver, which borrowed it */
  Py_TYPE(self)->tp_free((PyObject *)self);
}

/* SolverHandle(path, comm=None, *, text=None, net_path=None, snapshot_prefix=None, max_iter=0,
 * no_interval_snapshots=False, no_testing=False, test_iter=0): the solver file at `path`, or its
 * `text` (then `path` names it in messages), with cg_solver_options' overrides */
/* Between iterations: Python's signal handlers run (the GIL taken for that moment); one
 * that raises (Ctrl-C) ends the step at this boundary, and the exception propagates. */
static cg_solver_action python_poll(void *user) {
  (void)user;
  PyGILState_STATE g = PyGILState_Ensure();
  cgpy_take_signals(); /* the call blocked them (CGPY_BEGIN_C): they reach Python's handlers here */
  int raised = PyErr_CheckSignals() < 0;
  PyGILState_Release(g);
  return raised ? CG_ACTION_INTERRUPT : CG_ACTION_NONE;
}

static int solver_init(SolverHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"path", "comm", "text", "net_path", "snapshot_prefix", "max_iter", "no_interval_snapshots",
                           "no_testing", "test_iter", "skip_bad_records", "prefix_lock", NULL};
  PyObject *path = NULL, *comm = Py_None, *skip_arg = Py_None;
  const char *text = NULL, *net_path = NULL, *snapshot_prefix = NULL;
  Py_ssize_t text_len = 0;
  long max_iter = 0;
  int no_snapshots = 0, no_testing = 0, test_iter = 0, prefix_lock = 1;
  if (self->solver) {
    cgpy_raise("InvalidArgumentError", "SolverHandle is already initialised");
    return -1;
  }
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O$z#zzlppiOp", kwlist, PyUnicode_FSConverter, &path, &comm, &text,
                                   &text_len, &net_path, &snapshot_prefix, &max_iter, &no_snapshots, &no_testing,
                                   &test_iter, &skip_arg, &prefix_lock))
    return -1;
  if (comm != Py_None && !PyObject_TypeCheck(comm, &CommHandle_Type)) {
    Py_DECREF(path);
    cgpy_raise("InvalidArgumentError", "SolverHandle: comm must be a CommHandle or None");
    return -1;
  }
  const char *p = PyBytes_AS_STRING(path);
  cg_solver_options opt = {.net_path = net_path, .snapshot_prefix = snapshot_prefix, .solver_max_iter = max_iter,
                           .no_interval_snapshots = no_snapshots, .no_testing = no_testing, .test_iter = test_iter,
                           .poll = python_poll, .no_prefix_lock = !prefix_lock};
  if (comm != Py_None) opt.comm = ((CommHandle *)comm)->comm;
  if (cg_env_data_options(&opt.data_threads, &opt.skip_bad_records, &opt.max_bad_fraction)) { /* as the CLI */
    Py_DECREF(path);
    cgpy_raise_status(CG_ERR_INVALID);
    return -1;
  }
  if (skip_arg != Py_None) { /* the caller's choice wins over CAFFEGRID_SKIP_BAD_RECORDS */
    int skip = PyObject_IsTrue(skip_arg);
    if (skip < 0) {
      Py_DECREF(path);
      return -1;
    }
    opt.skip_bad_records = skip;
  }
  cg_solver *solver = NULL;
  int rc;
  cgpy_prepare_threads();
  CGPY_BEGIN_C
  rc = text ? cg_solver_create_from_text(text, (size_t)text_len, p, &opt, &solver)
            : cg_solver_create_from_file(p, &opt, &solver);
  CGPY_END_C
  Py_DECREF(path);
  if (rc) {
    cgpy_raise_status(rc);
    return -1;
  }
  int nets = 1 + cg_solver_num_test_nets(solver);
  self->fed = PyList_New(nets);
  for (int i = 0; self->fed && i < nets; i++) {
    PyObject *d = PyDict_New();
    if (!d) Py_CLEAR(self->fed);
    else PyList_SET_ITEM(self->fed, i, d);
  }
  if (!self->fed) {
    cg_solver_free(solver);
    return -1;
  }
  self->solver = solver;
  if (comm != Py_None) {
    Py_INCREF(comm);
    self->comm = comm;
  }
  return 0;
}

static int check_solver(SolverHandle *self) {
  if (self->solver) return 0;
  cgpy_raise("InvalidArgumentError", "this SolverHandle holds no solver (its constructor failed or was never run)");
  return -1;
}

/* Runs fn(solver) without the GIL, with the busy flag held. */
static PyObject *run_unlocked(SolverHandle *self, const char *what, int (*fn)(cg_solver *, const void *), const void *arg) {
  if (check_solver(self) || cgpy_enter(&self->busy, what)) return NULL;
  int rc;
  cgpy_prepare_threads();
  CGPY_BEGIN_C
  rc = fn(self->solver, arg);
  CGPY_END_C
  self->busy = 0;
  if (PyErr_Occurred()) return NULL; /* a signal handler raised (Ctrl-C: KeyboardInterrupt) between iterations */
  if (rc) return cgpy_raise_status(rc);
  Py_RETURN_NONE;
}

static int do_step(cg_solver *s, const void *arg) { return cg_solver_step(s, *(const int *)arg); }
static int do_solve(cg_solver *s, const void *arg) { return (void)arg, cg_solver_solve(s); }
static int do_snapshot(cg_solver *s, const void *arg) { return (void)arg, cg_solver_snapshot(s); }
static int do_test_all(cg_solver *s, const void *arg) { return (void)arg, cg_solver_test_all(s); }
static int do_restore(cg_solver *s, const void *arg) { return cg_solver_restore(s, arg); }
static int do_load_weights(cg_solver *s, const void *arg) { return cg_solver_load_weights(s, arg); }

static PyObject *solver_step(SolverHandle *self, PyObject *arg) {
  long n = PyLong_AsLong(arg);
  if (n == -1 && PyErr_Occurred()) return NULL;
  if (n < 0 || n > INT_MAX) return cgpy_raise("InvalidArgumentError", "step: %ld is not an iteration count", n);
  int iters = (int)n;
  return run_unlocked(self, "step", do_step, &iters);
}

static PyObject *solver_solve(SolverHandle *self, PyObject *noargs) {
  (void)noargs;
  return run_unlocked(self, "solve", do_solve, NULL);
}

static PyObject *solver_snapshot(SolverHandle *self, PyObject *noargs) {
  (void)noargs;
  return run_unlocked(self, "snapshot", do_snapshot, NULL);
}

static PyObject *solver_test_all(SolverHandle *self, PyObject *noargs) {
  (void)noargs;
  return run_unlocked(self, "test", do_test_all, NULL);
}

static PyObject *with_path(SolverHandle *self, PyObject *arg, const char *what, int (*fn)(cg_solver *, const void *)) {
  PyObject *path = NULL;
  if (!PyUnicode_FSConverter(arg, &path)) return NULL;
  PyObject *r = run_unlocked(self, what, fn, PyBytes_AS_STRING(path));
  Py_DECREF(path);
  return r;
}

static PyObject *solver_restore(SolverHandle *self, PyObject *arg) { return with_path(self, arg, "restore", do_restore); }
static PyObject *solver_load_weights(SolverHandle *self, PyObject *arg) {
  return with_path(self, arg, "load_weights", do_load_weights);
}

static PyObject *solver_net(SolverHandle *self, PyObject *arg) {
  long i = PyLong_AsLong(arg);
  if (i == -1 && PyErr_Occurred()) return NULL;
  if (check_solver(self)) return NULL;
  if (i < -1 || i >= cg_solver_num_test_nets(self->solver)) {
    PyErr_Format(PyExc_IndexError, "test net %ld out of range", i);
    return NULL;
  }
  cg_net *net = i < 0 ? cg_solver_net(self->solver) : cg_solver_test_net(self->solver, (int)i);
  return cgpy_net_borrowed(net, (PyObject *)self, PyList_GET_ITEM(self->fed, i + 1), &self->busy);
}

static PyObject *solver_last_test_score(SolverHandle *self, PyObject *args) {
  int i;
  const char *name;
  if (!PyArg_ParseTuple(args, "is", &i, &name) || check_solver(self)) return NULL;
  return PyFloat_FromDouble(cg_solver_last_test_score(self->solver, i, name));
}

/* The newest complete snapshot of the solver's snapshot_prefix, or None. */
static PyObject *solver_latest_snapshot(SolverHandle *self, PyObject *noargs) {
  (void)noargs;
  if (check_solver(self)) return NULL;
  char *path = cg_solver_latest_snapshot(self->solver);
  if (!path) Py_RETURN_NONE;
  PyObject *r = PyUnicode_DecodeFSDefault(path);
  free(path);
  return r;
}

static PyObject *solver_iter(SolverHandle *self, void *closure) {
  (void)closure;
  return check_solver(self) ? NULL : PyLong_FromLong(cg_solver_iter(self->solver));
}

static PyObject *solver_num_test_nets(SolverHandle *self, void *closure) {
  (void)closure;
  return check_solver(self) ? NULL : PyLong_FromLong(cg_solver_num_test_nets(self->solver));
}

static PyMethodDef solver_methods[] = {
    {"step", (PyCFunction)solver_step, METH_O, "step(iters) -> None (GIL released)"},
    {"solve", (PyCFunction)solver_solve, METH_NOARGS, "solve() -> None (GIL released)"},
    {"snapshot", (PyCFunction)solver_snapshot, METH_NOARGS, "snapshot() -> None"},
    {"test_all", (PyCFunction)solver_test_all, METH_NOARGS, "test_all() -> None"},
    {"restore", (PyCFunction)solver_restore, METH_O, "restore(solverstate_path) -> None"},
    {"load_weights", (PyCFunction)solver_load_weights, METH_O, "load_weights(paths) -> None"},
    {"net", (PyCFunction)solver_net, METH_O, "net(i) -> NetHandle: -1 the train net, else test net i"},
    {"latest_snapshot", (PyCFunction)solver_latest_snapshot, METH_NOARGS,
     "latest_snapshot() -> str or None: the newest complete .solverstate of snapshot_prefix"},
    {"last_test_score", (PyCFunction)solver_last_test_score, METH_VARARGS, "last_test_score(i, name) -> float"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef solver_getset[] = {
    {"iter", (getter)solver_iter, NULL, "iterations done", NULL},
    {"num_test_nets", (getter)solver_num_test_nets, NULL, "number of test nets", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject SolverHandle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "caffegrid._caffegrid.SolverHandle",
    .tp_doc = "SolverHandle(path, comm=None): a caffegrid solver (use caffegrid.Solver).",
    .tp_basicsize = sizeof(SolverHandle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = solver_new,
    .tp_init = (initproc)solver_init,
    .tp_dealloc = (destructor)solver_dealloc,
    .tp_methods = solver_methods,
    .tp_getset = solver_getset,
};
