/* Net.to_onnx: the C exporter (caffegrid/onnx.h) behind the Python door. */
#include "_ext.h"

#include "caffegrid/onnx.h"

/* to_onnx(path, opset=0, fixed_batch=False) -> tuple of the graph's output names */
PyObject *cgpy_net_to_onnx(NetHandle *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"path", "opset", "fixed_batch", NULL};
  PyObject *path = NULL;
  int opset = 0, fixed = 0;
  if (!self->net) {
    cgpy_raise("InvalidArgumentError", "this NetHandle holds no net");
    return NULL;
  }
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|ip", kwlist, PyUnicode_FSConverter, &path, &opset, &fixed))
    return NULL;
  if (cgpy_enter(self->busy, "to_onnx")) {
    Py_DECREF(path);
    return NULL;
  }
  cg_onnx_options o = {.opset = opset, .fixed_batch = fixed};
  cg_onnx_report report;
  const char *p = PyBytes_AS_STRING(path);
  int rc;
  CGPY_BEGIN_C
  rc = cg_net_export_onnx(self->net, &o, p, &report);
  CGPY_END_C
  *self->busy = 0;
  Py_DECREF(path);
  if (rc) return cgpy_raise_status(rc);
  PyObject *outputs = PyTuple_New(report.num_outputs);
  for (int i = 0; outputs && i < report.num_outputs; i++) {
    PyObject *name = PyUnicode_FromString(report.outputs[i]);
    if (!name) {
      Py_CLEAR(outputs);
      break;
    }
    PyTuple_SET_ITEM(outputs, i, name);
  }
  cg_onnx_report_free(&report);
  return outputs;
}
