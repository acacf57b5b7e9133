#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prove, in seconds, every capability the lab relies on, before any lab host
# starts: a machine that lacks one fails here with its cause and fix, not twenty
# minutes later with a connection error. Run by lab/host-setup.sh; rerun alone
# at any time (as root). Each check prints one line; the first failure stops.
#   runtime   a container starts with the configured OCI runtime and rlimits
#   systemd   a container boots systemd to running (every lab host does)
#   dns       containers on a user network resolve each other by name
#   af_packet a container with NET_RAW opens an AF_PACKET socket (sniffing sensors)
#   mirror    a container reaches the Debian mirror (lab hosts install packages)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${LAB_IMAGE:-localhost/pdnssoc-lab-debian:bookworm}
MIRROR=$(lab/mirror.sh)
tag=pdnssoc-check-$$
net=$tag-net
boot=$tag-boot
log=$(mktemp)
started=$(date +%s)

cleanup() {
  podman rm -f -t 0 "$boot" >/dev/null 2>&1 || true
  podman network rm -f "$net" >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT

ok() { printf 'host-check: ok    %-9s %s\n' "$1" "$2"; }
fail() {
  # $1 check, $2 what failed, $3 cause, $4 fix
  printf 'host-check: FAIL  %-9s %s\n  cause: %s\n  fix:   %s\n' "$1" "$2" "$3" "$4" >&2
  if [ -s "$log" ]; then
    echo "  podman said:" >&2
    tail -n 5 "$log" | sed 's/^/    /' >&2
  fi
  exit 1
}

command -v podman >/dev/null \
  || fail runtime "podman is not installed" "apt-packages.txt was not installed" \
    "run lab/host-setup.sh (or make deps) as root"
podman info >/dev/null 2>"$log" \
  || fail runtime "podman does not start" "its configuration names something missing (see below)" \
    "rerun lab/host-setup.sh: it writes /etc/containers/containers.conf (runtime runc, netavark) and installs both"
backend=$(podman info --format '{{.Host.NetworkBackend}}')
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}')
podman image exists "$IMAGE" \
  || fail runtime "image $IMAGE is missing" "the lab image was not built" "run lab/build-image.sh"

# runtime and rlimits: the smallest container there is.
if ! podman run --rm --network none "$IMAGE" /bin/true >"$log" 2>&1; then
  if grep -qi rlimit "$log"; then
    fail runtime "a container cannot start: podman's default rlimits exceed this host's hard limits" \
      "podman sets nofile/nproc above \`ulimit -Hn\`/\`ulimit -Hu\` without CAP_SYS_RESOURCE" \
      "rerun lab/host-setup.sh: it writes default_ulimits from this host's limits into /etc/containers/containers.conf"
  elif grep -qiE 'cgroup|crun' "$log"; then
    fail runtime "a container cannot start with runtime '$runtime'" \
      "crun does not support this host's hybrid cgroup layout" \
      "rerun lab/host-setup.sh: it sets runtime = \"runc\" in /etc/containers/containers.conf (package runc)"
  fi
  fail runtime "a container cannot start with runtime '$runtime'" "see podman's message below" \
    "check /etc/containers/containers.conf (lab/host-setup.sh writes it) and \`podman info\`"
fi
ok runtime "containers start (runtime $runtime, nofile $(ulimit -Hn) hard limit respected)"

# A user network, as the lab's, with a systemd host on it.
if [ "$backend" != netavark ]; then
  fail dns "podman uses the '${backend:-unknown}' network backend, not netavark" \
    "network_backend is not set to netavark, or netavark is not installed" \
    "rerun lab/host-setup.sh (installs netavark and aardvark-dns, sets network_backend = \"netavark\")"
fi
podman network create "$net" >"$log" 2>&1 \
  || fail dns "cannot create a podman network" "see podman's message below" \
    "check that netavark and iptables are installed (apt-packages.txt)"
if [ "$(podman network inspect --format '{{.DNSEnabled}}' "$net")" != true ]; then
  fail dns "a new podman network has DNS disabled" \
    "aardvark-dns, podman's DNS provider for netavark, is not installed" \
    "apt-get install aardvark-dns (it is in apt-packages.txt; rerun lab/host-setup.sh)"
fi

podman run -d --name "$boot" --hostname "$boot" --network "$net" --systemd=always \
  --cap-add NET_RAW "$IMAGE" /sbin/init >"$log" 2>&1 \
  || fail systemd "a container with --systemd=always does not start" "see podman's message below" \
    "check the cgroup mounts under /sys/fs/cgroup and the runtime (runc)"
state=""
for _ in $(seq 1 60); do
  state=$(podman exec "$boot" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 0.5
done
case "$state" in
  running | degraded) ok systemd "a container boots systemd ($state)" ;;
  *)
    podman logs "$boot" >"$log" 2>&1 || true
    fail systemd "systemd in a container did not reach 'running' in 30 s (state: ${state:-none})" \
      "the container cannot mount its cgroups or run systemd as PID 1" \
      "run podman with a cgroup v1/v2 layout systemd accepts; see \`podman logs\` of a lab host"
    ;;
esac

resolved=""
for _ in $(seq 1 10); do
  if resolved=$(podman run --rm --network "$net" "$IMAGE" getent hosts "$boot" 2>"$log"); then
    break
  fi
  resolved=""
  sleep 0.5
done
[ -n "$resolved" ] \
  || fail dns "containers on a user network cannot resolve each other by name" \
    "no DNS answers inside the network (aardvark-dns missing or blocked, or the network was created before it was installed)" \
    "apt-get install netavark aardvark-dns, then recreate the lab's networks: make demo-down (lab/host-setup.sh does the install)"
ok dns "containers resolve each other by name ($boot -> ${resolved%% *})"

podman exec "$boot" python3 -c \
  'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)).close()' \
  >"$log" 2>&1 \
  || fail af_packet "a container with NET_RAW cannot open an AF_PACKET socket" \
    "the kernel lacks packet sockets (CONFIG_PACKET) or a seccomp/LSM policy denies them" \
    "use a host kernel with AF_PACKET; sniffing sensors (afpacket-sniffer) need it"
ok af_packet "a container with NET_RAW opens an AF_PACKET socket"

podman exec "$boot" python3 -c \
  'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/dists/bookworm/Release", timeout=15).read(64)' \
  "$MIRROR" >"$log" 2>&1 \
  || fail mirror "a container cannot reach the Debian mirror $MIRROR" \
    "no NAT from the podman network to the outside (iptables missing, or forwarding blocked)" \
    "install iptables (apt-packages.txt), check that this host reaches $MIRROR, then rerun lab/host-setup.sh"
ok mirror "a container reaches $MIRROR"

# Lab networks left from an older set-up without DNS would break name lookups later.
for old in $(podman network ls --format '{{.Name}}' | grep '^pdnssoc-' || true); do
  [ "$old" = "$net" ] && continue
  if [ "$(podman network inspect --format '{{.DNSEnabled}}' "$old")" != true ]; then
    podman network rm -f "$old" >/dev/null
    echo "host-check: removed network $old (created without DNS; the lab recreates it)"
  fi
done

echo "host-check: the lab can run here (checked in $(($(date +%s) - started)) s)"
