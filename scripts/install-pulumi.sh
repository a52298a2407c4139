#!/usr/bin/env bash
# Puts a pinned Pulumi CLI where the orchestrator looks for it (.tools/pulumi/bin).
#
# Order of preference:
#   1. a `pulumi` already on PATH at the pinned version (symlinked, nothing built);
#   2. a cached build in .tools/pulumi/bin from an earlier run (instant);
#   3. a build from the Go module proxy (needs Go >= 1.22).
# The official installer downloads from a host that machines without internet
# cannot reach, so it is deliberately not tried.
#
# Inline Automation API programs run their own language host inside the Python
# process, so the CLI needs no pulumi-language-python for them; dynamic providers
# need `pulumi-resource-pulumi-python`, a launcher we write next to the CLI.
set -euo pipefail

PULUMI_VERSION="${PULUMI_VERSION:-3.260.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${EDGESHIP_TOOLS_DIR:-$ROOT/.tools/pulumi}"
BIN="$TOOLS/bin"
PYTHON="${EDGESHIP_PYTHON:-$ROOT/.venv/bin/python}"
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

if have_version "$BIN/pulumi"; then
  write_launcher
  echo "pulumi v$PULUMI_VERSION: cached in $BIN"
  exit 0
fi

if command -v pulumi >/dev/null 2>&1 && have_version "$(command -v pulumi)"; then
  ln -sf "$(command -v pulumi)" "$BIN/pulumi"
  write_launcher
  echo "pulumi v$PULUMI_VERSION: using $(command -v pulumi)"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
error: no Pulumi CLI v$PULUMI_VERSION found and Go is not installed to build one.
fix: install Pulumi v$PULUMI_VERSION (https://www.pulumi.com/docs/install/) and put it on PATH,
     or install Go >= 1.22 and run 'make install' again.
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

go 1.24

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
write_launcher
echo "pulumi $("$BIN/pulumi" version): built into $BIN"
