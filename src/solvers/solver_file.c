/* What a solver file names, read without building the solver (see
 * cg_solver_file_net in caffegrid/solver.h). */
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/solver.h"
#include "core/paths.h"
#include "proto/proto_io.h"

int cg_solver_file_net(const char *solver_path, char **net_path, long *test_iter) {
  *net_path = NULL;
  Caffe__SolverParameter *sp = NULL;
  int rc = cg_read_solver_text(solver_path, &sp);
  if (rc) return rc;
  /* the net scored and tested: `net`, else the first test net, else the train net */
  const char *net = sp->net ? sp->net : sp->n_test_net ? sp->test_net[0] : sp->train_net;
  if (!net) rc = cg_error(CG_ERR_INVALID, "%s: names no 'net' file (net_param is not supported here)", solver_path);
  else if (!(*net_path = cg_path_resolve(net, solver_path))) rc = cg_error(CG_ERR_NOMEM, "out of memory");
  if (!rc && test_iter && sp->n_test_iter) *test_iter = sp->test_iter[0];
  protobuf_c_message_free_unpacked(&sp->base, NULL);
  return rc;
}
