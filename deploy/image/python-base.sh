#!/usr/bin/env bash
# A local stand-in for the Dockerfile's base image (python:3.11-slim-bookworm), made from Debian's
# own packages for machines that cannot pull from a container registry. It has the shape the
# Dockerfile relies on and nothing more: `python` and `pip` on PATH, pip allowed to install
# system-wide (Debian's EXTERNALLY-MANAGED marker removed: the official image has none), apt-get
# on bookworm, bookworm-updates and bookworm-security, useradd, and no compiler. Like the
# official slim images, it leaves out documentation, manual pages and translations, for the
# packages installed here and for those a build adds.
#
# Usage (as root, with mmdebstrap and podman): deploy/image/python-base.sh [TAG]
# then build with --build-arg PYTHON_IMAGE=TAG (default TAG: localhost/python:3.11-slim-bookworm).
set -euo pipefail
tag=${1:-localhost/python:3.11-slim-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# The hook runs in mmdebstrap with the new root as its first argument: single quotes on purpose.
# shellcheck disable=SC2016
mmdebstrap \
    --variant=minbase \
    --format=tar \
    --aptopt='APT::Install-Recommends "false"' \
    --include=python3,python3-pip,python-is-python3,ca-certificates,netbase,tzdata \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
    bookworm - \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb $security bookworm-security main" |
    podman import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$tag"
