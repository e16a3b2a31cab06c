#!/bin/sh
# Re-vendor the dashboard's charting library (uPlot, MIT) and the API docs' Swagger UI
# (swagger-ui-dist, Apache-2.0) from the npm registry. Usage: rebuild.sh [UPLOT [SWAGGER]].
# Run by hand when upgrading; nothing is fetched when hpo runs. The files land next to
# this script: uPlot.iife.min.js (the browser build), uPlot.min.css, uPlot.LICENSE.
set -eu
VERSION="${1:-1.6.32}"
here="$(cd "$(dirname "$0")" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
npm init -y >/dev/null
npm install --no-audit --no-fund "uplot@$VERSION" "swagger-ui-dist@${2:-5.36.0}" >/dev/null
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$here/"
cp node_modules/uplot/LICENSE "$here/uPlot.LICENSE"
swagger=node_modules/swagger-ui-dist
cp "$swagger/swagger-ui-bundle.js" "$swagger/swagger-ui.css" "$swagger/swagger-ui-bundle.js.LICENSE.txt" "$here/"
cp "$swagger/LICENSE" "$here/swagger-ui.LICENSE"
echo "uPlot $VERSION and swagger-ui-dist ${2:-5.36.0} vendored into $here"
