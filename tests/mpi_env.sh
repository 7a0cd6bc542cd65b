# Open MPI settings for tests on this machine (sourced): run as root, more ranks
# than cores, and idle ranks yield the CPU (else a 4 KB allreduce takes ~10 ms).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
# Sanitizer build: Open MPI keeps memory in its plugins until exit; suppress those
# reports (tests/lsan.supp), with full stacks so the suppressions can match, and
# keep plugins loaded so their frames have names.
case "${CAFFEGRID:-}" in
  *build-san*)
    export OMPI_MCA_mca_base_component_disable_dlclose=1
    export LSAN_OPTIONS="suppressions=${CAFFEGRID%/build-san/caffegrid}/tests/lsan.supp:fast_unwind_on_malloc=0"
    ;;
esac
