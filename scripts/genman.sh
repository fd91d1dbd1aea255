#!/usr/bin/env bash
# Man pages generated from the program's own --help, so they cannot drift
# from it: nfsrecover(8) and nfsrecover-APPLET(8) for every applet, whose
# NAME also lists the applet's link names (rpc.statd, ...). nfs-utils' own
# pages keep those names.
# Usage: scripts/genman.sh BIN OUTDIR
set -euo pipefail
bin=$1 out=$2
mkdir -p "$out"
ver=$("$bin" --version | awk '{print $2}')
page() { # name, section title, help text
  printf '.TH %s 8 "" "nfsrecover %s" "System Manager'"'"'s Manual"\n' "$(echo "${1%%,*}" | tr a-z A-Z)" "$ver"
  printf '.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' "$1" "$2"
  sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\\&'/"
  printf '.fi\n.SH SEE ALSO\nnfsrecover(8)\n'
}
"$bin" --help | page nfsrecover "NFS crash-recovery tools in one binary" > "$out/nfsrecover.8"
"$bin" --list-full | while IFS=$'\t' read -r name status links install summary; do
  names="nfsrecover-$name"
  for l in ${links//,/ }; do [ "$l" = - ] || names="$names, $(basename "$l")"; done
  "$bin" "$name" --help 2>&1 | page "$names" "$summary" > "$out/nfsrecover-$name.8" || true
done
