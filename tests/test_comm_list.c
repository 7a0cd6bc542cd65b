/* Communicators come from one list: names, the local default, unknown names and a
 * TCP ring's bad peer list refused with messages. (MPI and TCP rings of several
 * processes are run by cli_mpi.sh, cli_tcp.sh and the Spark tests, through the
 * same cg_comm_create.) */
#include <string.h>

#include "caffegrid/comm.h"
#include "caffegrid/error.h"
#include "check.h"

int main(void) {
  const char *const *names = cg_comm_backend_names();
  CHECK(names[0] && names[1] && names[2] && !names[3]);
  CHECK(strcmp(names[0], "local") == 0 && strcmp(names[1], "mpi") == 0 && strcmp(names[2], "tcp") == 0);

  cg_comm *c = NULL;
  CHECK_EQ_INT(cg_comm_create(NULL, &c), 0);
  CHECK(c && cg_comm_size(c) == 1 && cg_comm_rank(c) == 0 && strcmp(cg_comm_backend(c), "local") == 0);
  float v[3] = {1, 2, 3};
  CHECK_EQ_INT(cg_comm_allreduce_sum(c, v, 3), 0);
  CHECK(v[0] == 1 && v[1] == 2 && v[2] == 3);
  cg_comm_free(c);

  cg_comm_options o = {.backend = "nccl"};
  c = (cg_comm *)&o; /* must be reset to NULL on failure */
  CHECK_EQ_INT(cg_comm_create(&o, &c), CG_ERR_INVALID);
  CHECK(c == NULL);
  CHECK_MSG(strstr(cg_error_message(), "unknown communicator 'nccl'") && strstr(cg_error_message(), "tcp"), "%s",
            cg_error_message());

  o = (cg_comm_options){.backend = "tcp", .peers = "", .rank = 0};
  CHECK_EQ_INT(cg_comm_create(&o, &c), CG_ERR_INVALID);
  CHECK_MSG(strstr(cg_error_message(), "names no host:port"), "%s", cg_error_message());
  o = (cg_comm_options){.backend = "tcp", .peers = "127.0.0.1:1,127.0.0.1:2", .rank = 2};
  CHECK_EQ_INT(cg_comm_create(&o, &c), CG_ERR_INVALID);
  CHECK_MSG(strstr(cg_error_message(), "rank 2, but the peer list names 2 peers"), "%s", cg_error_message());
  return CHECK_REPORT();
}
