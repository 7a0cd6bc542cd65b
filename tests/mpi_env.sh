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
# mpi_rank_pid FILE PATTERN RANK: waits (up to 30 s) for FILE to appear, then prints the pid of
# the process matching PATTERN that Open MPI started as RANK (empty when there is none)
mpi_rank_pid() {
  local pid
  for _ in $(seq 600); do [ -e "$1" ] && break; sleep 0.05; done
  for pid in $(pgrep -f "$2"); do
    tr '\0' '\n' </proc/$pid/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$3" && { echo "$pid"; return; }
  done
}
