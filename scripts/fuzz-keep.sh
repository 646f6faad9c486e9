#!/usr/bin/env bash
# fuzz-keep.sh -- fuzz every native fuzz target for a while and keep what
# the fuzzer found: up to KEEP of the smallest new corpus entries of each
# target are copied from Go's fuzz cache into the package's
# testdata/fuzz/<Target>/, where plain "go test" replays them as seeds and
# CI's short runs start from them. Review and commit the new files.
#
#   scripts/fuzz-keep.sh                        # every target, 2 min each
#   FUZZTIME=30s KEEP=20 scripts/fuzz-keep.sh ./dnsserver
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FUZZTIME=${FUZZTIME:-2m}
KEEP=${KEEP:-40}
CACHE=$(go env GOCACHE)/fuzz
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

for pkg in $(go list "${pkgs[@]}"); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for name in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "==> fuzz $pkg $name for $FUZZTIME" >&2
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"
		src=$CACHE/$pkg/$name
		dst=$dir/testdata/fuzz/$name
		[ -d "$src" ] || continue
		mkdir -p "$dst"
		have=$(find "$dst" -type f | wc -l)
		# Smallest first: small inputs are the clearest regression seeds.
		find "$src" -type f -printf '%s %p\n' | sort -n | cut -d' ' -f2- |
			while read -r f; do
				[ "$have" -lt "$KEEP" ] || break
				b=$(basename "$f")
				[ -e "$dst/$b" ] && continue
				cp "$f" "$dst/$b"
				have=$((have + 1))
			done
		echo "    $dst: $(find "$dst" -type f | wc -l) inputs" >&2
	done
done
