#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The lab's hosts as podman containers with systemd, on one podman network:
#   up      create the network and start every host (reuses running ones)
#   down    remove every host and the network
#   status  list the hosts
# Host names are the inventory names of inventories/lab/hosts.yml; Ansible
# reaches them with the containers.podman.podman connection.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${LAB_IMAGE:-localhost/pdnssoc-lab-debian:bookworm}
# The member's workstation: the base image with dig and Chromium.
WORKSTATION_IMAGE=${LAB_WORKSTATION_IMAGE:-localhost/pdnssoc-lab-workstation:bookworm}
NETWORK=${LAB_NETWORK:-pdnssoc-lab}
HOSTS=(pdnssoc-lab-dns pdnssoc-lab-misp pdnssoc-lab-mail pdnssoc-lab-server pdnssoc-lab-sensor
  pdnssoc-lab-sensor-b pdnssoc-lab-sensor-c pdnssoc-lab-sensor-d pdnssoc-lab-client)
LABEL=pdnssoc.lab=demo

# aardvark-dns, started with the first container on a network, says it cannot
# reach syslog on hosts without one (it then logs nothing): not worth a line.
podman_quiet() {
  "$@" 2> >(grep -v '^failed to connect to syslog' >&2)
}

up() {
  for image in "$IMAGE" "$WORKSTATION_IMAGE"; do
    podman image exists "$image" || {
      echo "lab: image $image missing (run lab/host-setup.sh)" >&2
      exit 1
    }
  done
  podman network exists "$NETWORK" || podman_quiet podman network create --label "$LABEL" "$NETWORK" >/dev/null
  for host in "${HOSTS[@]}"; do
    state=$(podman container inspect --format '{{.State.Status}}' "$host" 2>/dev/null || true)
    case "$state" in
      running) continue ;;
      "") ;;
      *) podman rm -f "$host" >/dev/null ;;
    esac
    # The sensors read their resolver's dnstap socket: no capability beyond
    # the defaults; univ-d's collector sniffs with AF_PACKET (CAP_NET_RAW).
    extra=()
    [ "$host" != pdnssoc-lab-sensor-d ] || extra=(--cap-add NET_RAW)
    image=$IMAGE
    [ "$host" != pdnssoc-lab-client ] || image=$WORKSTATION_IMAGE
    podman_quiet podman run -d --name "$host" --hostname "$host" --network "$NETWORK" \
      --label "$LABEL" --systemd=always "${extra[@]}" "$image" /sbin/init >/dev/null
    echo "lab: started $host"
  done
  for host in "${HOSTS[@]}"; do
    for _ in $(seq 1 60); do
      s=$(podman exec "$host" systemctl is-system-running 2>/dev/null || true)
      case "$s" in running | degraded) break ;; esac
      sleep 0.5
    done
  done
}

down() {
  for host in "${HOSTS[@]}"; do
    if podman container exists "$host"; then
      podman rm -f -t 5 "$host" >/dev/null
      echo "lab: removed $host"
    fi
  done
  if podman network exists "$NETWORK"; then
    podman network rm "$NETWORK" >/dev/null
    echo "lab: removed network $NETWORK"
  fi
}

status() {
  podman ps -a --filter "label=$LABEL" --format '{{.Names}}\t{{.Status}}'
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
