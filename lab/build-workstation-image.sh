#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the lab workstation's image localhost/pdnssoc-lab-workstation:bookworm:
# the base image (lab/build-image.sh) with what the lab's client host runs as
# a member's workstation would: dig, and the analyst's browser (Chromium and
# the NSS tools for the analyst's certificate) for the web view's check.
# Installing them is the largest part of the lab's package downloads (about
# 150 packages); in the image they are installed once, while `make test` runs
# lint and the unit tests, instead of in every end-to-end run. The playbooks
# still ensure the packages themselves (lab/demo/services.yml): on the base
# image the lab works the same, only slower. Cached like the base image: the
# pdnssoc.recipe label holds this script's hash and the base image's recipe.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${LAB_IMAGE:-localhost/pdnssoc-lab-debian:bookworm}
IMAGE=${LAB_WORKSTATION_IMAGE:-localhost/pdnssoc-lab-workstation:bookworm}
PACKAGES=(bind9-dnsutils chromium libnss3-tools)

base_recipe=$(podman image inspect --format '{{index .Labels "pdnssoc.recipe"}}' "$BASE" 2>/dev/null) || {
  echo "build-workstation-image: base image $BASE missing (run lab/build-image.sh)" >&2
  exit 1
}
recipe=$( { cat "$0"; echo "$base_recipe"; } | sha256sum | cut -c1-16)
current=$(podman image inspect --format '{{index .Labels "pdnssoc.recipe"}}' "$IMAGE" 2>/dev/null || true)
if [ "${FORCE:-0}" != 1 ] && [ "$current" = "$recipe" ]; then
  echo "build-workstation-image: $IMAGE is current (recipe $recipe)"
  exit 0
fi

start=$(date +%s)
work=pdnssoc-lab-workstation-build
podman rm -f "$work" >/dev/null 2>&1 || true
trap 'podman rm -f "$work" >/dev/null 2>&1 || true' EXIT
# The host's network: the build needs only the Debian mirror the base image
# was made from, as the host reaches it.
if ! podman run --name "$work" --network host "$BASE" sh -c \
  "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${PACKAGES[*]} >/dev/null \
   && apt-get clean && rm -rf /var/lib/apt/lists/*" >"/var/tmp/$work.log" 2>&1; then
  tail -n 30 "/var/tmp/$work.log" >&2
  exit 1
fi
rm -f "/var/tmp/$work.log"
podman commit -q \
  --change 'CMD ["/sbin/init"]' \
  --change "LABEL pdnssoc.recipe=$recipe" \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  "$work" "$IMAGE" >/dev/null
echo "build-workstation-image: built $IMAGE (recipe $recipe, ${#PACKAGES[@]} packages and their dependencies) in $(( $(date +%s) - start )) s"
