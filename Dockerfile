# filterlens container images.
#
#   target `env`   the software environment only (Python 3.11 + requirements.lock).
#                  This is what Snakemake's `container:` directive runs jobs in; the
#                  workflow files come from the working directory it mounts.
#   target `full`  (default) env + the workflow in /workflow; the entrypoint runs
#                  snakemake there, extra `docker run` arguments go to snakemake:
#
#     docker build -t filterlens .
#     docker run --rm -v "$PWD/results:/workflow/results" filterlens
#     docker run --rm -v "$PWD/results:/workflow/results" filterlens --configfile my.yaml
#
#   Add --user "$(id -u):$(id -g)" to own the results on a Linux host; any uid works.
#
# Default base: the linux/amd64 image manifest of the Docker Official Image
# python:3.11-slim-bookworm (CPython 3.11.16 on Debian 12, built 2026-08-25), as
# recorded by docker-library/repo-info (repos/python/remote/3.11-slim-bookworm.md).
# A per-platform digest on purpose: requirements.lock is resolved for CPython 3.11
# on linux x86_64 (torch's CUDA wheels). Bump it together with the lock:
#   docker buildx imagetools inspect python:3.11-slim-bookworm
# Offline builds pass --build-arg BASE=<any local image with python3 + venv>.
ARG BASE=python:3.11-slim-bookworm@sha256:2fc9207f64226cb05ac317cee0bab6fa55a9ea311ce5a086baddd4b4a83c2d3c

FROM ${BASE} AS env

# Optional pip settings for builds behind a proxy or with local wheels; unset, pip
# uses https://pypi.org/simple and its own CA bundle. PIP_FIND_LINKS takes
# whitespace-separated folders mounted into the build (podman build -v DIR:DIR:ro),
# PIP_CERT a CA bundle mounted the same way. Build args show up in the image
# history: never put credentials in them.
ARG PIP_INDEX_URL
ARG PIP_CERT
ARG PIP_FIND_LINKS

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache

# --require-hashes + --no-deps: exactly the locked files, nothing resolved at build time.
COPY requirements.lock /tmp/requirements.lock
RUN set -eu; \
    for v in PIP_INDEX_URL PIP_CERT PIP_FIND_LINKS; do \
        eval "[ -n \"\${$v:-}\" ] || unset $v"; \
    done; \
    python3 -m venv "$VIRTUAL_ENV"; \
    pip install --no-deps --require-hashes -r /tmp/requirements.lock; \
    pip check; \
    rm /tmp/requirements.lock; \
    useradd --uid 1000 --user-group --create-home --shell /bin/bash filterlens; \
    mkdir -p /workflow; \
    chmod 0777 /workflow

WORKDIR /workflow
USER 1000:1000
CMD ["python"]

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="filterlens-env" \
      org.opencontainers.image.description="Software environment of the filterlens workflow (Python 3.11, torch, torchvision, snakemake)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"


FROM env AS full

# The build context is exactly what .dockerignore lets through: Snakefile,
# config.yaml, workflow/, envs/, profiles/, resources/images/ and requirements.lock.
# Workflow files are root-owned and read-only for the runtime user; /workflow and
# /workflow/resources stay writable by any uid for .snakemake/, logs/, results/
# and downloaded weights (results/ is normally a bind mount).
USER 0:0
COPY . /workflow/
RUN mkdir -p /workflow/resources && chmod 0777 /workflow /workflow/resources
USER 1000:1000

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=
# No git in the image: the revision the image was built from, for provenance records.
ENV FILTERLENS_GIT_REVISION=${REVISION}
LABEL org.opencontainers.image.title="filterlens" \
      org.opencontainers.image.description="Feature maps of every filter of torchvision CNNs as PNG frames, lossless AVI and statistics (Snakemake workflow)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# Default job: the workflow's own config.yaml on all cores (profiles/default, when
# present, is applied by Snakemake itself). Arguments given to `docker run IMAGE ...`
# are appended, and later options win: `docker run ... IMAGE --cores 2 -n`.
ENTRYPOINT ["snakemake", "--snakefile", "/workflow/Snakefile", "--directory", "/workflow", "--cores", "all"]
CMD []
