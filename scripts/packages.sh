#!/usr/bin/env bash
# make packages: the .deb and .rpm of nfsrecover in OUTDIR, built with nfpm
# at a pinned version (fetched through the Go module proxy), with man pages
# generated from --help and the version from git.
# Usage: scripts/packages.sh BIN OUTDIR [PKGVERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(readlink -f "$1") out=$2
NFPM_VERSION=v2.41.3
export PKGVERSION=${3:-$(./scripts/pkgversion.sh)}
export ARCH=${ARCH:-$(go env GOARCH)}
STAGE=build/pkg # packaging/nfpm.yaml takes the files from here
rm -rf "$STAGE"; mkdir -p "$STAGE"
trap 'rm -rf build' EXIT
cp "$bin" "$STAGE/nfsrecover"
./scripts/genman.sh "$bin" "$STAGE/man"
gzip -9n "$STAGE"/man/*.8
mkdir -p "$out"
for p in deb rpm; do
  go run github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION pkg -f packaging/nfpm.yaml -p $p -t "$out/" >&2
done
ls "$out"/nfsrecover*"$PKGVERSION"* 2>/dev/null || ls "$out"
