#!/usr/bin/env bash
# Installs what building and testing caffegrid needs on a fresh Debian 12 machine (run as root).
set -euo pipefail
packages=(build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev libopenblas-dev
  protobuf-compiler openmpi-bin libopenmpi-dev liblmdb-dev lmdb-utils libjpeg62-turbo-dev libpng-dev zlib1g-dev libhdf5-dev python3
  slurm-wlm munge)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q -o DPkg::Lock::Timeout=600
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi
