#!/usr/bin/env bash
# Installs what bench/cpu_speed.py compares against: Debian's PyTorch (CPU) for
# /usr/bin/python3. Not needed by the build or the tests.
set -euo pipefail
/usr/bin/python3 -c 'import torch' 2>/dev/null && exit 0
apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 python3-torch
