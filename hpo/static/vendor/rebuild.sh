#!/bin/sh
# Re-vendor the dashboard's charting library (uPlot, MIT) from the npm registry.
# Run by hand when upgrading; nothing is fetched when hpo runs. The files land next to
# this script: uPlot.iife.min.js (the browser build), uPlot.min.css, uPlot.LICENSE.
set -eu
VERSION="${1:-1.6.32}"
here="$(cd "$(dirname "$0")" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
npm init -y >/dev/null
npm install --no-audit --no-fund "uplot@$VERSION" >/dev/null
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$here/"
cp node_modules/uplot/LICENSE "$here/uPlot.LICENSE"
echo "uPlot $VERSION vendored into $here"
