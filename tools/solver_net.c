/* The net named by a solver file (see solver_net.h). */
#include "solver_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caffegrid/error.h"
#include "proto/proto_io.h"

int cg_solver_net_path(const char *solver_path, char **net_path, long *test_iter) {
  Caffe__SolverParameter *sp = NULL;
  int rc = cg_read_solver_text(solver_path, &sp);
  if (rc) return rc;
  const char *net = sp->net ? sp->net : sp->n_test_net ? sp->test_net[0] : NULL;
  if (!net) {
    protobuf_c_message_free_unpacked(&sp->base, NULL);
    return cg_error(CG_ERR_INVALID, "%s: names no 'net' file to test", solver_path);
  }
  struct stat st;
  const char *slash = strrchr(solver_path, '/');
  if (stat(net, &st) != 0 && net[0] != '/' && slash) {
    if (asprintf(net_path, "%.*s/%s", (int)(slash - solver_path), solver_path, net) < 0) *net_path = NULL;
  } else {
    *net_path = strdup(net);
  }
  if (sp->n_test_iter) *test_iter = sp->test_iter[0];
  protobuf_c_message_free_unpacked(&sp->base, NULL);
  return *net_path ? CG_OK : cg_error(CG_ERR_NOMEM, "out of memory");
}

