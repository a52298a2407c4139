#!/usr/bin/env bash
# Puts a pinned Pulumi CLI where the orchestrator looks for it (.tools/pulumi/bin).
#
# Order of preference:
#   1. a cached install in .tools/pulumi/bin from an earlier run (instant);
#   2. a `pulumi` already on PATH at the pinned version (hard-linked or copied, nothing built);
#   3. a build of ours from an earlier clone, kept in the per-user cache (the one
#      orchestrator/local/runtime.py keeps the Lambda runtime in): a second clone, or CI's
#      clean clone, links the binary instead of building it again (that build took
#      ~5.5 CPU-minutes on a 2-core machine with a cold Go cache, ~1 with a warm one);
#   4. the official release archive, where it can be downloaded (30 s limit);
#   5. a build from the Go module proxy (needs Go >= 1.26.6: pkg/v3's go.mod says so;
#      with an older Go, GOTOOLCHAIN=auto lets it fetch that toolchain).
#
# Inline Automation API programs run their own language host inside the Python
# process, so the CLI needs no pulumi-language-python for them; dynamic providers
# need `pulumi-resource-pulumi-python`, a launcher we write next to the CLI.
#
# The engine looks for that launcher next to the *resolved* path of the running
# `pulumi` (a "bundled" plugin, as the official archive ships them) and, besides, on
# PATH, warning "using ... from $PATH at X expected Y" on every command when the two
# differ. So the CLI is never a symlink here: a hard link (same file system) or a copy,
# in one directory with the launcher, where the bundled lookup finds ours.
set -euo pipefail

PULUMI_VERSION="${PULUMI_VERSION:-3.260.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${EDGESHIP_TOOLS_DIR:-$ROOT/.tools/pulumi}"
BIN="$TOOLS/bin"
PYTHON="${EDGESHIP_PYTHON:-$ROOT/.venv/bin/python}"
CACHE="${EDGESHIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeship}/pulumi/v$PULUMI_VERSION-$(uname -s)-$(uname -m)"
mkdir -p "$BIN"

write_launcher() {
  # The engine starts dynamic providers through this name; it must use the
  # interpreter that has the pulumi SDK and the program's modules installed.
  cat >"$BIN/pulumi-resource-pulumi-python" <<LAUNCHER
#!/bin/sh
exec "$PYTHON" -u -m pulumi.dynamic "\$@"
LAUNCHER
  chmod +x "$BIN/pulumi-resource-pulumi-python"
}

have_version() {
  [ -x "$1" ] && [ "$("$1" version 2>/dev/null)" = "v$PULUMI_VERSION" ]
}

place() {
  # $1 -> $BIN/pulumi as a real file: a hard link where possible, else a copy.
  local real
  real="$(readlink -f "$1")"
  [ "$real" = "$(readlink -f "$BIN/pulumi" 2>/dev/null || true)" ] && [ ! -L "$BIN/pulumi" ] && return 0
  rm -f "$BIN/pulumi.tmp"
  ln "$real" "$BIN/pulumi.tmp" 2>/dev/null || cp "$real" "$BIN/pulumi.tmp"
  mv -f "$BIN/pulumi.tmp" "$BIN/pulumi"
}

if [ -L "$BIN/pulumi" ] && have_version "$BIN/pulumi"; then
  place "$BIN/pulumi"  # an earlier install's symlink: the engine would look beside its target
fi

if have_version "$BIN/pulumi"; then
  write_launcher
  echo "pulumi v$PULUMI_VERSION: cached in $BIN"
  exit 0
fi

if command -v pulumi >/dev/null 2>&1 && have_version "$(command -v pulumi)"; then
  place "$(command -v pulumi)"
  write_launcher
  echo "pulumi v$PULUMI_VERSION: using $(command -v pulumi)"
  exit 0
fi

if have_version "$CACHE/pulumi"; then
  place "$CACHE/pulumi"
  write_launcher
  echo "pulumi v$PULUMI_VERSION: an earlier build, from $CACHE"
  exit 0
fi

official_archive() {
  local arch
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) return 1 ;; esac
  local url="https://get.pulumi.com/releases/sdk/pulumi-v$PULUMI_VERSION-$(uname -s | tr '[:upper:]' '[:lower:]')-$arch.tar.gz"
  local tmp
  tmp="$(mktemp -d)"
  if curl -fsSL --max-time 30 "$url" -o "$tmp/pulumi.tgz" 2>/dev/null && tar -xzf "$tmp/pulumi.tgz" -C "$tmp"; then
    # never written in place: $BIN/pulumi may be a hard link to another install's CLI
    cp "$tmp/pulumi/pulumi" "$BIN/pulumi.tmp" && mv -f "$BIN/pulumi.tmp" "$BIN/pulumi"
    rm -rf "$tmp"
    return 0
  fi
  rm -rf "$tmp"
  return 1
}

if command -v curl >/dev/null 2>&1 && official_archive && have_version "$BIN/pulumi"; then
  write_launcher
  echo "pulumi v$PULUMI_VERSION: official release in $BIN"
  exit 0
fi
echo "pulumi v$PULUMI_VERSION: the official release cannot be downloaded here; building from source"

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
error: no Pulumi CLI v$PULUMI_VERSION found and Go is not installed to build one.
fix: install Pulumi v$PULUMI_VERSION (https://www.pulumi.com/docs/install/) and put it on PATH,
     or install Go >= 1.26.6 and run 'make install' again.
MSG
  exit 3
fi

echo "pulumi v$PULUMI_VERSION: building from the Go module proxy (first time only, several minutes)..."
BUILD="$TOOLS/build"
mkdir -p "$BUILD"
# pkg/v3's go.mod replaces the SDK with a relative path and swaps a clipboard
# fork in; `go install m@v` refuses such modules, so build from a wrapper module
# that requires them and repeats the replace that matters outside the repo.
cat >"$BUILD/go.mod" <<GOMOD
module edgeship.local/pulumi-build

go 1.26.6

require (
	github.com/pulumi/pulumi/pkg/v3 v$PULUMI_VERSION
	github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
GOMOD
cat >"$BUILD/tools.go" <<GOSRC
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GOSRC
(
  cd "$BUILD"
  go mod tidy >/dev/null
  go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    -o "$BIN/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
)
mv "$BIN/pulumi.tmp" "$BIN/pulumi"
# Kept for the next clone: copied whole under a unique name, then renamed into place, so a
# concurrent install never links half a binary.
mkdir -p "$CACHE"
kept="$(mktemp "$CACHE/.pulumi.XXXXXX")"
cp "$BIN/pulumi" "$kept" && chmod 0755 "$kept" && mv -f "$kept" "$CACHE/pulumi"
write_launcher
echo "pulumi $("$BIN/pulumi" version): built into $BIN (kept in $CACHE)"
