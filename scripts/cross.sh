#!/usr/bin/env bash
# Cross-builds the static nfsrecover binary for every platform its users run.
#   scripts/cross.sh OUTDIR        one binary per target, OUTDIR/nfsrecover-OS-ARCH,
#                                  and OUTDIR/SHA256SUMS
# GO, TAGS and LDFLAGS come from the environment (the Makefile sets them).
set -euo pipefail
out=${1:?usage: scripts/cross.sh OUTDIR}
go=${GO:-go}
tags=${TAGS:-urfave_cli_no_docs}
ldflags=${LDFLAGS:--s -w}
# linux/s390x is the big-endian check; the embedded and initramfs users run
# the other Linux targets; FreeBSD users run stablerestart and db.
targets=(linux/amd64 linux/arm64 linux/arm linux/386 linux/riscv64 linux/s390x freebsd/amd64 freebsd/arm64)
mkdir -p "$out"
for t in "${targets[@]}"; do
  os=${t%/*} arch=${t#*/}
  echo "cross: $os/$arch" >&2
  GOOS=$os GOARCH=$arch CGO_ENABLED=0 "$go" build -trimpath -tags "$tags" -ldflags "$ldflags" \
    -o "$out/nfsrecover-$os-$arch" .
done
(cd "$out" && sha256sum nfsrecover-* >SHA256SUMS)
