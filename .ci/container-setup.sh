#!/usr/bin/env bash
# Make podman able to build and run the course's image on a machine without a Docker engine or a
# container registry: install podman, runc and debootstrap when missing, write the
# podman configuration the sandbox needs, and make the local base image localhost/py-base:bookworm
# with debootstrap unless podman already has it. Idempotent: a second run only checks.
set -euo pipefail

BASE_IMAGE="${MLPROD_BASE_IMAGE:-localhost/py-base:bookworm}"
CONF="${CONTAINERS_CONF:-/tmp/mlprod-containers.conf}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump when the recipe below changes: an image made by an older recipe is made again.
RECIPE=2
SUITE="${DEBIAN_SUITE:-bookworm}"

log() { printf '[container-setup] %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

missing=()
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  t0=$(now)
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends podman runc debootstrap ca-certificates >/dev/null
  log "installed in $(since "$t0") s"
fi

# The sandbox refuses setrlimit (so no default ulimits) and has a hybrid cgroup layout that crun
# cannot use: run with runc, cgroupfs and file events. These settings live in the shipped
# containers.conf, the same file mlprod.container uses; no podman flag repeats them.
tmp_conf="$(mktemp "${CONF}.XXXXXX")"
install -m 644 "$(dirname "$0")/../mlprod/templates/container/containers.conf" "$tmp_conf"
mv -f "$tmp_conf" "$CONF"
export CONTAINERS_CONF="$CONF"
log "podman configuration: $CONF"

# The storage driver is the one setting containers.conf cannot hold: the same single flag as
# mlprod.container.PODMAN.
P=(podman --storage-driver=vfs)

recipe_of() {
  "${P[@]}" image inspect --format '{{index .Labels "mlprod.base.recipe"}}' "$BASE_IMAGE" 2>/dev/null
}
if "${P[@]}" image exists "$BASE_IMAGE" && [[ "$(recipe_of)" == "$RECIPE" ]]; then
  log "base image $BASE_IMAGE already present (recipe $RECIPE)"
else
  old_id="$("${P[@]}" image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)"
  rootfs="$(mktemp -d /var/tmp/mlprod-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  t0=$(now)
  log "debootstrap $SUITE into $rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$SUITE" "$rootfs" "$MIRROR" >/dev/null
  # Shrink the image: package lists and docs are not needed at run time.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  # mktemp -d made the folder 0700; it becomes the image's "/", which every user must traverse.
  chmod 755 "$rootfs"
  log "debootstrap took $(since "$t0") s"
  t0=$(now)
  tar -C "$rootfs" -c . | "${P[@]}" import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL mlprod.base.recipe=$RECIPE" --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  log "import took $(since "$t0") s"
  if [[ -n "$old_id" ]]; then
    "${P[@]}" rmi "$old_id" >/dev/null 2>&1 || true  # the image of an older recipe
  fi
fi
"${P[@]}" image inspect --format '{{.Id}} {{.Size}}' "$BASE_IMAGE" | \
  awk -v name="$BASE_IMAGE" '{ printf "[container-setup] %s: id %s, %.0f MB\n", name, substr($1, 1, 12), $2 / 1e6 }'
