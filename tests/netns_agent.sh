#!/bin/sh
# Open MPI's plm_rsh_agent for the multi-host test: instead of ssh-ing to HOST
# (an address of a test network namespace), run the command inside that
# namespace with its own hostname. Usage: netns_agent.sh HOST COMMAND...
host=$1; shift
ns=$(cat "${CG_NETNS_MAP:?}/$host")
exec ip netns exec "$ns" unshare --uts sh -c "hostname $ns; $*"
