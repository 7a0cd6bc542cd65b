/* What a solver file names, read without building the solver (see
 * cg_solver_file_net in caffegrid/solver.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/solver.h"
#include "core/paths.h"
#include "proto/proto_io.h"

int cg_solver_file_net(const char *solver_path, int phase, char **net_path, long *test_iter) {
  *net_path = NULL;
  Caffe__SolverParameter *sp = NULL;
  int rc = cg_read_solver_text(solver_path, &sp);
  if (rc) return rc;
  const char *net = sp->net                         ? sp->net
                    : phase == 1 && sp->n_test_net ? sp->test_net[0]
                                                   : sp->train_net;
  if (!net) rc = cg_error(CG_ERR_INVALID, "%s: names no 'net' file (net_param is not supported here)", solver_path);
  else if (!(*net_path = cg_path_resolve(net, solver_path))) rc = cg_error(CG_ERR_NOMEM, "out of memory");
  if (!rc && test_iter && sp->n_test_iter) *test_iter = sp->test_iter[0];
  protobuf_c_message_free_unpacked(&sp->base, NULL);
  return rc;
}

static void copy_text(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src ? src : ""); }

int cg_solver_text_info(const char *text, size_t len, const char *source_name, cg_solver_info *out) {
  memset(out, 0, sizeof *out);
  Caffe__SolverParameter *sp = NULL;
  int rc = cg_parse_solver_text(text, len, source_name ? source_name : "solver", &sp);
  if (rc) return rc;
  copy_text(out->net, sizeof out->net, sp->net ? sp->net : sp->train_net);
  copy_text(out->snapshot_prefix, sizeof out->snapshot_prefix, sp->snapshot_prefix);
  out->max_iter = sp->max_iter;
  out->snapshot = sp->snapshot, out->test_interval = sp->test_interval, out->iter_size = sp->iter_size;
  out->test_iter = sp->n_test_iter ? sp->test_iter[0] : 0;
  out->test_initialization = sp->test_initialization;
  protobuf_c_message_free_unpacked(&sp->base, NULL);
  return CG_OK;
}
