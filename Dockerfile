# syntax=docker/dockerfile:1
# fleet-controller: `docker build -t fleet-controller .`
# The builder stage turns the project and its dependencies into wheels and installs exactly those
# wheels (no index) into a virtual environment; the final stage copies that environment, adds git
# for the git source, and runs as an unprivileged user. No compiler, no wheel, no pip cache ships.
# Offline and reproducible: fill wheelhouse/ first (deploy/image/wheelhouse.sh, optionally with
# --constraint) and build with --build-arg PIP_NO_INDEX=1; no package index is consulted then.
# Without a registry to pull from, deploy/image/python-base.sh makes the base image from Debian's
# packages (--build-arg PYTHON_IMAGE=...). deploy/README.md has the commands.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# 1: wheels from wheelhouse/ only. 0 (default): wheelhouse/ and the package index both.
ARG PIP_NO_INDEX=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY wheelhouse ./wheelhouse
COPY pyproject.toml README.md ./
COPY controller ./controller
# The environment is made without pip (the base's pip fills it) at the path the final stage uses,
# on the same base, so its interpreter links resolve there too.
RUN pip wheel --find-links ./wheelhouse --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/fleet-controller \
    && pip --python /opt/fleet-controller/bin/python install --no-index --find-links /wheels \
        /wheels/*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="fleet-controller" \
      org.opencontainers.image.description="Reconciles an Amazon WorkSpaces fleet managed by AWS Systems Manager with desired state kept in git"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/var/lib/fleet-controller \
    PATH=/opt/fleet-controller/bin:$PATH \
    FLEET_HEALTH_URL=http://127.0.0.1:9100/healthz

# git: the git source clones and fetches with the git CLI. Debian's security updates arrive by
# rebuilding the image, so the package is not pinned to one revision.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 fleet \
    && useradd --system --uid 10001 --gid fleet --home-dir /var/lib/fleet-controller \
        --shell /usr/sbin/nologin fleet \
    && install -d -o fleet -g fleet -m 0750 /var/lib/fleet-controller

# The installed project and the versions the builder resolved, copied whole: the wheels stay in
# the builder. (Not a RUN --mount from the builder: buildah then reads a stale or missing stage
# when the builder comes from the layer cache, podman issue 16281, buildah issue 4522.)
COPY --from=builder /opt/fleet-controller /opt/fleet-controller

USER 10001:10001
WORKDIR /var/lib/fleet-controller
# The only paths the controller writes (the clone under its home, temporary files): declared as
# volumes so a read-only root filesystem works as is (`docker run --read-only`, ECS bind mounts
# inherit the directories' owner and mode from here; Kubernetes mounts emptyDirs instead).
VOLUME ["/var/lib/fleet-controller", "/tmp"]
EXPOSE 9100

# /healthz answers while the process serves; no curl in the image, so Python's urllib asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['FLEET_HEALTH_URL'], timeout=4)"]

ENTRYPOINT ["fleet-controller"]
# Follows the repository in FLEET_GIT_URL (FLEET_GIT_REF, FLEET_GIT_PATH), or pass a directory:
# `docker run fleet-controller run /desired-state`. The clone lives under the writable home.
CMD ["run", "--git-dir", "/var/lib/fleet-controller/git"]
