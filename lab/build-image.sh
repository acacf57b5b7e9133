#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the lab's base image localhost/pdnssoc-lab-debian:bookworm: Debian 12
# (debootstrap minbase) with systemd as init, python3 for Ansible and the few
# packages every role test needs, and sshd (Ansible connects over SSH). Cached: rebuilt only when the image is
# missing or the recipe hash (this script + mirror) differs from the
# pdnssoc.recipe label of the existing image. FORCE=1 rebuilds anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${LAB_IMAGE:-localhost/pdnssoc-lab-debian:bookworm}
SUITE=bookworm
# openssh-server: Ansible reaches lab hosts over SSH (lab/ssh-proxy), as real ones.
PACKAGES=python3,python3-apt,systemd,systemd-sysv,dbus,sudo,ca-certificates,procps,iproute2,openssh-server

MIRROR=$(lab/mirror.sh)
SECURITY_MIRROR=${MIRROR%/debian}/debian-security

recipe=$( { cat "$0"; echo "$MIRROR $SUITE $PACKAGES"; } | sha256sum | cut -c1-16)
current=$(podman image inspect --format '{{index .Labels "pdnssoc.recipe"}}' "$IMAGE" 2>/dev/null || true)
if [ "${FORCE:-0}" != 1 ] && [ "$current" = "$recipe" ]; then
  echo "build-image: $IMAGE is current (recipe $recipe)"
  exit 0
fi

start=$(date +%s)
rootfs=$(mktemp -d /var/tmp/pdnssoc-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "build-image: debootstrap $SUITE from $MIRROR into $rootfs"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
  tail -n 30 "$rootfs.log" >&2
  exit 1
}
rm -f "$rootfs.log"

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
# A fresh machine-id per container; no units that make no sense in a container.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
for unit in systemd-remount-fs.service getty.target console-getty.service \
  systemd-logind.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# Recommends are not wanted in lab hosts (keeps package installs fast).
printf 'APT::Install-Recommends "false";\n' >"$rootfs/etc/apt/apt.conf.d/90-no-recommends"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change "LABEL pdnssoc.recipe=$recipe" \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  - "$IMAGE" >/dev/null
echo "build-image: built $IMAGE (recipe $recipe) in $(( $(date +%s) - start )) s"
