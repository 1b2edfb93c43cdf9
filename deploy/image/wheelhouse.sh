#!/usr/bin/env bash
# Fills a directory (default: wheelhouse/ at the repository's root, which the build context
# carries) with every wheel the image needs: the controller's dependencies and its build backend,
# for CPython 3.11 on Linux. With it, the image builds without a package index:
#   deploy/image/wheelhouse.sh && docker build --build-arg PIP_NO_INDEX=1 -t fleet-controller .
# Downloads only wheels (no source is built, so no compiler is needed anywhere), for this machine's
# architecture unless WHEEL_ARCH says otherwise (x86_64 or aarch64). Any further argument goes to
# `pip download`, e.g. `--constraint versions.txt` to take exactly the versions you tested.
#
# Usage: deploy/image/wheelhouse.sh [DIR] [pip download options]   (Python 3.11+ and pip)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=$(realpath -m "${1:-$root/wheelhouse}")
[ $# -gt 0 ] && shift
arch=${WHEEL_ARCH:-$(uname -m)}
python=${PYTHON:-python3}
cd "$root"
mapfile -t build_requires < <(
    "$python" -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'
)
"$python" -m pip download \
    --dest "$dest" \
    --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform "manylinux_2_28_$arch" \
    --platform "manylinux_2_17_$arch" \
    --platform "manylinux2014_$arch" \
    "$@" . "${build_requires[@]}"
