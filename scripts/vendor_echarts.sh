#!/usr/bin/env bash
# Refreshes the dashboard's vendored charting library from the npm registry.
# The dashboard serves these files itself: nothing is fetched when it runs.
set -euo pipefail
VERSION=6.1.0
cd "$(dirname "$0")/.."
out=service/optserve/dashboard/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "echarts@$VERSION" >/dev/null && tar -xzf "echarts-$VERSION.tgz")
cp "$work/package/dist/echarts.min.js" "$out/echarts.min.js"
cp "$work/package/LICENSE" "$out/echarts.LICENSE"
cp "$work/package/NOTICE" "$out/echarts.NOTICE"
echo "echarts $VERSION -> $out"
