#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Print the Debian mirror the lab uses: $LAB_DEBIAN_MIRROR, else the first
# non-security URI in this host's apt sources (deb822 or one-line format).
set -euo pipefail
if [ -n "${LAB_DEBIAN_MIRROR:-}" ]; then
  echo "$LAB_DEBIAN_MIRROR"
  exit 0
fi
uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
  | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
if [ -z "$uri" ]; then
  uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
fi
echo "${uri:-http://deb.debian.org/debian}"
