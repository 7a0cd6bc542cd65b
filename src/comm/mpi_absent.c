/* MPI in a library built without Open MPI (make WITH_MPI=0): asking for it (the CLI
 * does when mpirun or srun started it) is refused with a message saying so, rather
 * than every rank training alone as if it were the only one. */
#include "caffegrid/error.h"
#include "comm/comm_impl.h"

int cg_comm_create_mpi(int *argc, char ***argv, double timeout_s, cg_comm **out) {
  (void)argc, (void)argv, (void)timeout_s;
  *out = NULL;
  return cg_error(CG_ERR_UNSUPPORTED,
                  "MPI was asked for (started by mpirun or srun?), but this caffegrid was built without MPI "
                  "(rebuild with make WITH_MPI=1 and libopenmpi-dev)");
}
