# Open MPI settings for tests on this machine (sourced): run as root, more ranks
# than cores, and idle ranks yield the CPU (else a 4 KB allreduce takes ~10 ms).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
