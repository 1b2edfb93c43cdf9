# syntax=docker/dockerfile:1
# fleet-controller: `docker build -t fleet-controller .`
# The builder stage turns the project and its dependencies into wheels; the final stage installs
# them from those wheels alone (no compiler, no network), adds git for the git source, and runs as
# an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller ./controller
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="fleet-controller" \
      org.opencontainers.image.description="Reconciles an Amazon WorkSpaces fleet managed by AWS Systems Manager with desired state kept in git"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/var/lib/fleet-controller \
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

# Exactly the wheels built above (the project and the versions the builder resolved), from a
# bind mount so they never become a layer of this image; no index is consulted.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl

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
