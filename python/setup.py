# Builds caffegrid._caffegrid: the extension's C files plus the repository's static
# library (build/libcaffegrid.a, made by `make`) and the libraries it links
# (asked from the Makefile), so the installed package needs no build tree.
import os
import subprocess

import numpy
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("CAFFEGRID_ROOT", os.path.dirname(HERE))
BUILD = os.environ.get("CAFFEGRID_BUILD", "build")
SAN = os.environ.get("CAFFEGRID_SAN", "0")  # 1: the library was built with `make SAN=1` (ASan+UBSan)
LIBRARY = os.path.join(ROOT, BUILD, "libcaffegrid.a")


def library_flags():
    """The link line's libraries, as the Makefile spells them (MPI, HDF5, image libraries...)."""
    if not os.path.exists(LIBRARY):
        raise SystemExit(f"caffegrid: {LIBRARY} not found; run `make -j2` in {ROOT} first "
                         "(or set CAFFEGRID_ROOT to the repository)")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # under `make test`
    out = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, f"BUILD={BUILD}", f"SAN={SAN}",
                          "print-ldlibs"], check=True, capture_output=True, text=True, env=env).stdout
    return out.split()


sources = [os.path.join("caffegrid", f) for f in ("_module.c", "_net.c", "_solver.c", "_comm.c", "_data.c", "_records.c", "_onnx.c")]
include = os.path.join(ROOT, "include")
headers = [os.path.join(include, "caffegrid", f) for f in sorted(os.listdir(os.path.join(include, "caffegrid")))]
extension = Extension(
    "caffegrid._caffegrid",
    sources=sources,
    depends=[LIBRARY, os.path.join("caffegrid", "_ext.h")] + headers,
    # the module is one of the library's users: its public headers only
    include_dirs=[include, numpy.get_include()],
    extra_compile_args=["-std=gnu11", "-fopenmp", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
    + (["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if SAN == "1" else []),
    extra_objects=[LIBRARY],
    # keep the library's own symbols out of the extension's dynamic symbol table
    extra_link_args=["-fopenmp", "-Wl,--exclude-libs,ALL"] + library_flags(),
)

setup(ext_modules=[extension])
