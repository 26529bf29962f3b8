#!/usr/bin/env bash
# Re-fetch the vendored browser assets at their pinned versions and check them.
#
# The files under static/vendor/ are never edited by hand: this script fetches
# each pinned npm package with `npm pack` (npm verifies the tarball against the
# registry's integrity hash), copies the one file we ship out of it, and checks
# its sha256 against the table in static/vendor/VERSIONS.md.
#
# Usage:
#   scripts/vendor_assets.sh            fetch, copy, verify (fails on any mismatch)
#   scripts/vendor_assets.sh --check    fetch and verify only; leave static/vendor untouched
#   scripts/vendor_assets.sh --print    fetch and print VERSIONS.md table rows (to bump a pin:
#                                        change PINS below, run --print, paste the rows)
set -euo pipefail

# package  version  file-inside-the-package  destination-under-static/vendor  licence
PINS=(
  "htmx.org     2.0.11  dist/htmx.min.js    htmx.min.js      0BSD"
  "htmx-ext-ws  2.0.4   dist/ws.min.js      htmx-ext-ws.js   0BSD"
  "mermaid      11.17.2 dist/mermaid.min.js mermaid.min.js   MIT"
)

mode="${1:-install}"
case "$mode" in install|--check|--print) ;; *) echo "usage: $0 [--check|--print]" >&2; exit 2 ;; esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$root/static/vendor"
versions="$vendor/VERSIONS.md"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

command -v npm >/dev/null || { echo "npm is required (apt-get install npm)" >&2; exit 1; }

status=0
for pin in "${PINS[@]}"; do
  read -r pkg version src dest licence <<<"$pin"
  dir="$tmp/$pkg"
  mkdir -p "$dir"
  tarball="$(cd "$dir" && npm pack --silent "$pkg@$version" | tail -n 1)"
  tar -xzf "$dir/$tarball" -C "$dir"
  file="$dir/package/$src"
  [ -f "$file" ] || { echo "$pkg@$version has no $src" >&2; exit 1; }
  got="$(sha256sum "$file" | cut -d' ' -f1)"

  if [ "$mode" = "--print" ]; then
    echo "| $pkg | $version | $dest | $src | $got | $licence |"
    continue
  fi

  # The VERSIONS.md row for this file: | package | version | file | source | sha256 | licence |
  want="$(awk -F'|' -v d="$dest" '{f=$4; gsub(/[ `]/,"",f)} f==d {s=$6; gsub(/[ `]/,"",s); print s}' "$versions")"
  wantver="$(awk -F'|' -v d="$dest" '{f=$4; gsub(/[ `]/,"",f)} f==d {v=$3; gsub(/[ `]/,"",v); print v}' "$versions")"
  if [ -z "$want" ]; then
    echo "FAIL $dest: no row in VERSIONS.md" >&2; status=1; continue
  fi
  if [ "$wantver" != "$version" ]; then
    echo "FAIL $dest: VERSIONS.md says $wantver, script pins $version" >&2; status=1; continue
  fi
  if [ "$got" != "$want" ]; then
    echo "FAIL $dest: $pkg@$version sha256 $got, VERSIONS.md expects $want" >&2; status=1; continue
  fi
  if [ "$mode" = "install" ]; then
    cp "$file" "$vendor/$dest"
    echo "ok   $dest <- $pkg@$version/$src ($got)"
  else
    have="$(sha256sum "$vendor/$dest" 2>/dev/null | cut -d' ' -f1 || true)"
    if [ "$have" = "$want" ]; then
      echo "ok   $dest matches $pkg@$version"
    else
      echo "FAIL $dest on disk differs from $pkg@$version/$src" >&2; status=1
    fi
  fi
done
exit "$status"
