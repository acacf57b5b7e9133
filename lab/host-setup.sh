#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prepare this machine to run the podman lab, then prove it can (idempotent, as root):
#  1. the Debian packages of apt-packages.txt (podman, runc, netavark, aardvark-dns, ...);
#  2. /etc/containers/containers.conf: runtime runc (crun fails on hybrid cgroups),
#     default ulimits no higher than this host's hard limits (podman's defaults need
#     CAP_SYS_RESOURCE, which CI hosts lack), and the netavark network backend
#     (aardvark-dns answers containers' lookups of each other's names);
#  3. the lab's SSH key (.cache/lab-ssh; Ansible reaches lab hosts over SSH through
#     lab/ssh-proxy) and its base image (lab/build-image.sh, cached);
#  4. lab/host-check.sh: every capability the lab relies on, each failing in seconds
#     with its cause and fix.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "host-setup: the lab runs rootful podman: run as root (sudo make demo)" >&2
  exit 1
fi

scripts/apt-install apt-packages.txt

conf=/etc/containers/containers.conf
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
# podman wants numbers; cap "unlimited" at values every kernel accepts.
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=4194304
# podman lowers its own RLIMIT_NPROC to at most 32768 when it cannot raise it,
# and runc (started by podman) cannot then set a higher container limit.
[ "$nproc" -gt 32768 ] && nproc=32768

wanted=$(cat <<CONF
# Managed by lab/host-setup.sh (pDNSSOC lab); rerun it to refresh.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
CONF
)

if [ -f "$conf" ] && [ "$(cat "$conf")" = "$wanted" ]; then
  echo "host-setup: $conf up to date"
else
  if [ -f "$conf" ] && ! grep -q 'Managed by lab/host-setup.sh' "$conf"; then
    cp -p "$conf" "$conf.pdnssoc-orig"
    echo "host-setup: kept the previous $conf as $conf.pdnssoc-orig"
  fi
  mkdir -p "$(dirname "$conf")"
  tmp=$(mktemp "$conf.XXXXXX")
  printf '%s\n' "$wanted" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$conf"
  echo "host-setup: wrote $conf (nofile=$nofile nproc=$nproc runtime=runc network=netavark)"
fi

# The key Ansible logs in to lab hosts with (lab/ssh-proxy); lab only.
key=.cache/lab-ssh/id_ed25519
if [ ! -f "$key" ]; then
  mkdir -p "$(dirname "$key")" && chmod 0700 "$(dirname "$key")"
  ssh-keygen -q -t ed25519 -N '' -C pdnssoc-lab -f "$key"
  echo "host-setup: wrote the lab's SSH key $key"
fi

lab/build-image.sh
lab/build-workstation-image.sh
lab/host-check.sh
