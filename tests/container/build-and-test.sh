#!/usr/bin/env bash
# Build the filterlens images (Dockerfile targets `env` and `full`) with podman and
# check that the containerized workflow reproduces a host run bit for bit.
#
#   1. podman/buildah/debootstrap/runc from apt if missing
#   2. a private podman configuration (nothing in /etc/containers changes)
#   3. a Debian bookworm base image made with debootstrap (no registry needed; cached)
#   4. `env` and `full` images; local wheel folders are mounted into the build as
#      --find-links so no gigabytes are downloaded, the host CA bundle for pip
#   5. tests/configs/tiny.yaml inside the full image, results bind-mounted, and in
#      the env image on a mounted working tree (as Snakemake's container: runs jobs)
#   6. the same config on the host with the host's Python environment
#   7. every results/<model>/<image>/<run>/MANIFEST.sha256 must be equal
#
# Needs root (apt, debootstrap, rootful podman). Idempotent: a second run reuses
# the packages, the base image and the build cache. Environment knobs:
#   FILTERLENS_BASE_IMAGE  base image (default localhost/filterlens-base:bookworm,
#                          built with debootstrap when missing; FORCE_BASE=1 rebuilds)
#   FILTERLENS_WHEEL_DIRS  wheel folders for --find-links (default: those of
#                          /opt/pypi-more/files /opt/pypi/files /opt/wheels that exist)
#   FILTERLENS_HOST_PYTHON python of the host environment (default: .venv/bin/python
#                          of the repository, else python3 on PATH)
#   FILTERLENS_TEST_CONFIG config for both runs (default tests/configs/tiny.yaml)
#   FILTERLENS_CORES       cores for both runs (default: nproc)
#   PIP_CERT               CA bundle for pip in the build (default: the host bundle)
#   WORK                   scratch folder (default /var/tmp/filterlens-container)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${WORK:-/var/tmp/filterlens-container}"
BASE_IMAGE="${FILTERLENS_BASE_IMAGE:-localhost/filterlens-base:bookworm}"
ENV_IMAGE="${FILTERLENS_ENV_IMAGE:-localhost/filterlens-env:test}"
FULL_IMAGE="${FILTERLENS_FULL_IMAGE:-localhost/filterlens:test}"
CONFIG="${FILTERLENS_TEST_CONFIG:-tests/configs/tiny.yaml}"
CORES="${FILTERLENS_CORES:-$(nproc)}"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
declare -a TIMINGS=()
t0=0
tic() { t0=$(date +%s.%N); }
toc() { TIMINGS+=("$(awk -v a="$t0" -v b="$(date +%s.%N)" -v n="$1" 'BEGIN { printf "%-28s %7.1f s", n, b - a }')"); }
image_size() { podman image inspect -f '{{.Size}}' "$1" | numfmt --to=iec-i --suffix=B; }

[ "$(id -u)" = 0 ] || die "run as root (apt, debootstrap and rootful podman)"
cd "$ROOT"

for f in Snakefile config.yaml "$CONFIG"; do [ -e "$f" ] || die "missing $f"; done

# 1. Tools. runc, not crun: crun 1.8 refuses hybrid cgroup v1+v2 hosts.
need=()
for p in podman buildah debootstrap runc; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  log "apt-get install ${need[*]}"
  tic
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${need[@]}" >/dev/null
  toc "install tools"
fi

# 2. Engine configuration, private to this script. Container rlimits must not
#    exceed the hard limits podman itself runs under (its default nofile is 1048576).
mkdir -p "$WORK"
hn=$(ulimit -Hn); [ "$hn" = unlimited ] && hn=1048576
hu=$(ulimit -Hu); { [ "$hu" = unlimited ] || [ "$hu" -gt 32768 ]; } && hu=32768
export CONTAINERS_CONF="$WORK/containers.conf"
cat > "$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=$hn:$hn", "nproc=$hu:$hu"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF

# 3. Base image: Debian bookworm with python3 + venv from the host's apt mirror.
if [ "${FORCE_BASE:-0}" = 1 ] || ! podman image exists "$BASE_IMAGE"; then
  [ "$BASE_IMAGE" = localhost/filterlens-base:bookworm ] \
    || die "base image $BASE_IMAGE not found (only the default one is built here)"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  log "debootstrap bookworm from $mirror"
  tic
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
    bookworm "$WORK/rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; die "debootstrap"; }
  rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
  tar --numeric-owner -C "$WORK/rootfs" -c . \
    | podman import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$WORK/rootfs"
  toc "base image (debootstrap)"
fi

# 4. Images. Mounts and build args only make pip find local files and trust the
#    proxy's CA; the installed set is fixed by requirements.lock's hashes.
build_args=(--build-arg "BASE=$BASE_IMAGE"
            --build-arg "VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
            --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
            --build-arg "SOURCE=$(git remote get-url origin 2>/dev/null || true)")
vols=()
ca="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
if [ -f "$ca" ]; then
  vols+=(-v "$ca:/run/host-ca.crt:ro"); build_args+=(--build-arg PIP_CERT=/run/host-ca.crt)
fi
wheel_dirs=()
for d in ${FILTERLENS_WHEEL_DIRS:-/opt/pypi-more/files /opt/pypi/files /opt/wheels}; do
  if [ -d "$d" ]; then wheel_dirs+=("$d"); vols+=(-v "$d:$d:ro"); fi
done
if [ "${#wheel_dirs[@]}" -gt 0 ]; then build_args+=(--build-arg "PIP_FIND_LINKS=${wheel_dirs[*]}"); fi

build() {  # build TARGET TAG
  local old new
  old=$(podman image inspect -f '{{.Id}}' "$2" 2>/dev/null || true)
  log "podman build --target $1 -> $2"
  tic
  podman build --isolation chroot --network host "${vols[@]}" "${build_args[@]}" \
    --target "$1" -t "$2" -f Dockerfile . > "$WORK/build-$1.log" 2>&1 \
    || { tail -40 "$WORK/build-$1.log"; die "podman build --target $1 (log: $WORK/build-$1.log)"; }
  toc "build $1"
  new=$(podman image inspect -f '{{.Id}}' "$2")
  # A replaced test image is gigabytes; drop it unless something else uses it.
  if [ -n "$old" ] && [ "$old" != "$new" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
}
build env "$ENV_IMAGE"
build full "$FULL_IMAGE"

# 5. + 6. Every run gets the same tree: what the full image holds, plus the test configs.
#    full:  the image's own /workflow, results bind-mounted (how users run it)
#    env:   the env image on a mounted working tree (how Snakemake's container: runs jobs)
#    host:  this machine's Python environment
rm -rf "$WORK/host" "$WORK/full" "$WORK/env" "$WORK/container"
mkdir -p "$WORK/host" "$WORK/full/results"
for p in Snakefile config.yaml workflow envs profiles; do
  if [ -e "$p" ]; then cp -a "$p" "$WORK/host/"; fi
done
mkdir -p "$WORK/host/resources" "$WORK/host/tests"
cp -a resources/images "$WORK/host/resources/"
cp -a tests/configs "$WORK/host/tests/"
find "$WORK/host" -name __pycache__ -prune -exec rm -rf {} +
cp -a "$WORK/host" "$WORK/env"
# the images' default user (uid 1000) writes there
chown 1000:1000 "$WORK/full/results"
chown -R 1000:1000 "$WORK/env"

log "full image: $CONFIG in $FULL_IMAGE"
tic
podman run --rm --network none \
  -v "$WORK/full/results:/workflow/results" \
  -v "$ROOT/tests/configs:/workflow/tests/configs:ro" \
  "$FULL_IMAGE" --cores "$CORES" --configfile "$CONFIG" > "$WORK/run-full.log" 2>&1 \
  || { tail -40 "$WORK/run-full.log"; die "workflow in the full image (log: $WORK/run-full.log)"; }
toc "workflow run (full image)"

log "env image: $CONFIG in $ENV_IMAGE on a mounted working tree"
tic
podman run --rm --network none -v "$WORK/env:$WORK/env" -w "$WORK/env" \
  "$ENV_IMAGE" snakemake --cores "$CORES" --configfile "$CONFIG" > "$WORK/run-env.log" 2>&1 \
  || { tail -40 "$WORK/run-env.log"; die "workflow in the env image (log: $WORK/run-env.log)"; }
toc "workflow run (env image)"

py="${FILTERLENS_HOST_PYTHON:-}"
[ -n "$py" ] || { [ -x "$ROOT/.venv/bin/python" ] && py="$ROOT/.venv/bin/python"; } || py=python3
log "host: $CONFIG with $py"
tic
( cd "$WORK/host" && PATH="$(dirname "$py"):$PATH" "$py" -m snakemake --cores "$CORES" --configfile "$CONFIG" ) \
  > "$WORK/run-host.log" 2>&1 \
  || { tail -40 "$WORK/run-host.log"; die "workflow on the host (log: $WORK/run-host.log)"; }
toc "workflow run (host)"

# 7. Compare manifests run by run, each image run against the host run.
log "compare MANIFEST.sha256"
mapfile -t manifests < <(cd "$WORK/host" && find results -name MANIFEST.sha256 | sort)
[ "${#manifests[@]}" -gt 0 ] || die "the host run wrote no results/*/*/*/MANIFEST.sha256"
bad=0
for side in full env; do
  mapfile -t other < <(cd "$WORK/$side" && find results -name MANIFEST.sha256 | sort)
  if [ "${manifests[*]}" != "${other[*]}" ]; then
    echo "  $side: different set of manifests (< host, > $side):"
    diff <(printf '%s\n' "${manifests[@]}") <(printf '%s\n' "${other[@]}") | sed 's/^/    /' || true
    bad=1
  fi
done
for m in "${manifests[@]}"; do
  run_dir=$(dirname "$m")
  for side in host full env; do
    [ -f "$WORK/$side/$m" ] || continue
    ( cd "$WORK/$side/$run_dir" && sha256sum --quiet -c MANIFEST.sha256 ) \
      || { echo "  $side: $m does not match the files next to it"; bad=1; }
  done
  for side in full env; do
    [ -f "$WORK/$side/$m" ] || continue
    if cmp -s "$WORK/host/$m" "$WORK/$side/$m"; then
      echo "  same  $m ($(wc -l < "$WORK/host/$m") files): host = $side image"
    else
      bad=1
      echo "  DIFF  $m: host != $side image; files whose sha256 differ or exist on one side only:"
      join -j 2 -a 1 -a 2 -e MISSING -o 0,1.1,2.1 \
        <(sort -k 2 "$WORK/host/$m") <(sort -k 2 "$WORK/$side/$m") \
        | awk -v s="$side" '$2 != $3 { printf "    %s\n      host  %s\n      %-5s %s\n", $1, $2, s, $3 }'
    fi
  done
done
[ "$bad" = 0 ] || die "image and host results differ"

echo
echo "== timings"
printf '  %s\n' "${TIMINGS[@]}"
echo "== images"
for img in "$BASE_IMAGE" "$ENV_IMAGE" "$FULL_IMAGE"; do
  podman image exists "$img" && printf '  %-40s %s\n' "$img" "$(image_size "$img")"
done
echo "OK: ${#manifests[@]} manifests identical between host and container (full and env images)"
