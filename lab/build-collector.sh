#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build go-dnscollector from the Go module proxy and lay it out like an
# upstream release mirror, so the dnscollector role's download-and-verify path
# can be tested by serving .cache/collector/ over HTTP:
#   .cache/collector/v<V>/go-dnscollector                         the binary
#   .cache/collector/v<V>/go-dnscollector_<V>_linux_amd64.tar.gz  release-style archive
#   .cache/collector/v<V>/go-dnscollector_<V>_SHA256SUMS          release-style checksums
# Cached: rebuilt only when missing or when this recipe changed (FORCE=1 forces).
# v0.38.0 is the newest version the module proxy serves whole; it needs a
# wrapper module (two replaces, upstream go.sum) to resolve its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

# Go's module and build caches live in .cache/go, with the rest of what the lab
# builds (make purge removes them; writable, so that rm -rf works).
export GOMODCACHE=$PWD/.cache/go/mod GOCACHE=$PWD/.cache/go/build GOFLAGS=-modcacherw

VERSION=${COLLECTOR_VERSION:-0.38.0}
MODULE=github.com/dmachard/go-dnscollector
OUT=$PWD/.cache/collector/v$VERSION
GOARCH=$(go env GOARCH)
ARCHIVE=go-dnscollector_${VERSION}_linux_${GOARCH}.tar.gz
SUMS=go-dnscollector_${VERSION}_SHA256SUMS

recipe=$( { cat "$0"; go env GOVERSION; } | sha256sum | cut -c1-16)
if [ "${FORCE:-0}" != 1 ] && [ -x "$OUT/go-dnscollector" ] && [ -f "$OUT/$SUMS" ] \
  && [ "$(cat "$OUT/.recipe" 2>/dev/null)" = "$recipe" ] \
  && (cd "$OUT" && sha256sum --quiet -c "$SUMS"); then
  echo "build-collector: $OUT is current (recipe $recipe)"
  exit 0
fi

start=$(date +%s)
work=$(mktemp -d /var/tmp/pdnssoc-collector.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat >go.mod <<GOMOD
module pdnssoc.lab/collectorbuild

go 1.21

require $MODULE v$VERSION

replace inet.af/netaddr => github.com/inetaf/netaddr v0.0.0-20211027220019-c74959edd3b6

replace google.golang.org/grpc => google.golang.org/grpc v1.52.3
GOMOD
cat >tools.go <<'GOSRC'
//go:build tools

package tools

import _ "github.com/dmachard/go-dnscollector"
GOSRC
go mod download "$MODULE@v$VERSION"
srcdir=$(go list -m -f '{{.Dir}}' "$MODULE@v$VERSION" 2>/dev/null || true)
[ -n "$srcdir" ] || srcdir=$(go env GOMODCACHE)/github.com/dmachard/go-dnscollector@v$VERSION
# The upstream go.sum first: its sumdb lookup of go-powerdns-protobuf fails.
cp "$srcdir/go.sum" go.sum
chmod u+w go.sum
GOFLAGS="-mod=mod -modcacherw" go mod tidy >/dev/null 2>&1 || GOFLAGS="-mod=mod -modcacherw" go mod tidy
mkdir -p dist
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$VERSION" \
  -o dist/go-dnscollector "$MODULE"

# Release-style archive, reproducible (fixed owner, order and mtime).
cp "$srcdir/config.yml" "$srcdir/LICENSE" dist/
chmod 0644 dist/config.yml dist/LICENSE
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
  -C dist -czf "$ARCHIVE" go-dnscollector config.yml LICENSE
sha256sum "$ARCHIVE" >"$SUMS"

rm -rf "$OUT"
mkdir -p "$OUT"
install -m 0755 dist/go-dnscollector "$OUT/go-dnscollector"
install -m 0644 "$ARCHIVE" "$SUMS" "$OUT/"
echo "$recipe" >"$OUT/.recipe"
echo "build-collector: built go-dnscollector $VERSION into $OUT in $(( $(date +%s) - start )) s"
"$OUT/go-dnscollector" -v 2>&1 | head -n1 || true
