#!/usr/bin/env bash
# bench/gpu/device-run.sh — runs on the lent GPU machine, from the repository root: `bash bench/gpu/device-run.sh`.
#
# The machine has no network, no node, no npm and probably no redis-server, and each call to it carries at most
# 64 MiB, so bench/gpu/prepare-payload.sh packed everything into parts .gpu/p1/, .gpu/p2/, … carried one per call
# (files written by earlier calls stay while the machine is warm). Every call runs this same script:
#   - not all parts present yet: print facts about the machine (GPU, driver, CUDA/cuDNN libraries and where they
#     are) and, once the first part is there, check that the packed node and redis-server run here; exit 0;
#   - all parts present: verify checksums, reassemble into $GANTRY_GPU_DEST (/tmp/gantry-gpu), find the CUDA 13
#     libraries libonnxruntime_providers_cuda.so needs, start redis-server on a free port, probe CUDA, and run
#     `node dist/bench/gpu-check.js --out $OUT/gpu-report.md`; exit with its status.
# Logs go to $OUT (at most 8 files, flat names): gpu-report.md, device-run.log, facts.txt, ldd-cuda.txt,
# gantry-cuda.log, gantry-cpu-ref.log, redis.log.
#
# Env: OUT                      where results go (the device tool sets it; default ./gpu-out)
#      GANTRY_GPU_CHECK_DEVICE  cuda (default) | cpu: the CPU-only rehearsal of the whole path on a machine without a GPU
#      GANTRY_GPU_CHECK_ARGS    extra arguments for gpu-check.js (e.g. "--quick")
#      GANTRY_GPU_DEST          unpack folder (default /tmp/gantry-gpu)
#      GANTRY_GPU_REDIS_PORT    first port tried for redis-server (default 6390)
#      GANTRY_GPU_TIMEOUT       seconds gpu-check may run before `timeout` stops it (default 330;
#                               gpu-check's own deadline, 300 s, writes the report first)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$REPO/gpu-out}
DEST=${GANTRY_GPU_DEST:-/tmp/gantry-gpu}
CHECK_DEVICE=${GANTRY_GPU_CHECK_DEVICE:-cuda}
GPU_DIR=$REPO/.gpu
mkdir -p "$OUT" "$DEST"
# Everything printed also lands in $OUT/device-run.log (the tool returns only the last 12,000 characters).
exec > >(tee -a "$OUT/device-run.log") 2>&1
TEE_PID=$!
STARTED=$(date +%s)

step() { printf '\n== [%3ss] %s\n' "$(( $(date +%s) - STARTED ))" "$*"; }
die() { printf '\nDEVICE-RUN FAILED: %s\n' "$*"; finish 1; }
REDIS_PID=""
finish() {
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; fi
  [ -f "$DEST/redis.log" ] && cp "$DEST/redis.log" "$OUT/redis.log"
  for log in "$DEST"/logs/*.log; do [ -f "$log" ] && cp "$log" "$OUT/"; done
  printf '\n== device-run.sh exit %s after %ss; files in %s: %s\n' "$1" "$(( $(date +%s) - STARTED ))" "$OUT" "$(ls "$OUT" | tr '\n' ' ')"
  # Let tee write the last lines into device-run.log before the script ends.
  exec 1>&- 2>&-
  wait "$TEE_PID" 2>/dev/null
  exit "$1"
}

# Unpacks an .xz file to stdout: xz when present (multi-threaded), else Python's lzma module.
xz_cat() {
  if command -v xz >/dev/null; then xz -T0 -dc "$1"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer, 1 << 20)' "$1"; fi
}

# ---------------------------------------------------------------------------------------------------------------
# CUDA libraries: directories that may hold the CUDA 13 runtime, cuBLAS, cuRAND, cuFFT, cuDNN 9, NVRTC.
# Pip wheels (PyTorch/CuPy images) put them under site-packages/nvidia/<component>/lib or, for CUDA 13 wheels,
# nvidia/cu13/lib; toolkits under /usr/local/cuda*/lib64; distribution packages and the driver's libcuda.so.1
# under /usr/lib/x86_64-linux-gnu.
# ---------------------------------------------------------------------------------------------------------------
NEEDED_LIBS="libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcufft.so.12 libcudnn.so.9 libnvrtc.so.13 libcuda.so.1"

candidate_dirs() {
  local roots
  roots=$(python3 - 2>/dev/null <<'EOF'
import site, sys, os
paths = set()
try:
    import nvidia
    paths.update(nvidia.__path__)
except Exception:
    pass
for base in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
    candidate = os.path.join(base, 'nvidia')
    if os.path.isdir(candidate):
        paths.add(candidate)
print('\n'.join(sorted(paths)))
EOF
)
  {
    for root in $roots; do find "$root" -maxdepth 3 -type d \( -name lib -o -name lib64 \) 2>/dev/null; done
    for root in $roots; do find "$(dirname "$root")"/torch/lib -maxdepth 0 -type d 2>/dev/null; done
    ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-1[3-9]*/lib64 /usr/local/cuda-1[3-9]*/targets/x86_64-linux/lib 2>/dev/null
    ls -d /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/local/nvidia/lib 2>/dev/null
  } | awk '!seen[$0]++'
}

# Prints "soname<TAB>directory" for each needed library, the first candidate directory that has it.
locate_libs() {
  local dirs lib dir found
  dirs=$(candidate_dirs)
  for lib in $NEEDED_LIBS; do
    found=""
    for dir in $dirs; do if [ -e "$dir/$lib" ]; then found=$dir; break; fi; done
    if [ -z "$found" ]; then found=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l { sub(/.*=> /, ""); print; exit }' | xargs -r dirname); fi
    printf '%s\t%s\n' "$lib" "${found:-MISSING}"
  done
}

# Facts are gathered once per machine (importing torch alone takes seconds) and reused by later calls.
facts() {
  if [ -s "$DEST/facts.txt" ]; then echo "(gathered by an earlier call on this machine)"; cat "$DEST/facts.txt"; return; fi
  gather_facts > "$DEST/facts.txt" 2>&1
  cat "$DEST/facts.txt"
}

gather_facts() {
  echo "date: $(date -u +%FT%TZ); host: $(uname -n); $(uname -srm); user: $(id -un)"
  [ -f /etc/os-release ] && (. /etc/os-release && echo "os: $PRETTY_NAME")
  echo "cpus: $(nproc); memory: $(free -g 2>/dev/null | awk '/Mem:/{print $2 " GiB"}'); /tmp free: $(df -h /tmp | awk 'NR==2{print $4}')"
  echo "glibc: $(ldd --version 2>&1 | head -1)"
  echo "tools: $(for t in xz python3 node redis-server nvidia-smi sha256sum tar timeout; do printf '%s=%s ' "$t" "$(command -v "$t" >/dev/null && echo yes || echo no)"; done)"
  echo "--- nvidia-smi"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi 2>&1 | head -20
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1
  else echo "nvidia-smi not found"; fi
  echo "--- ldconfig -p | grep -E 'cudart|cublas|cudnn|cufft|curand|nvrtc|libcuda'"
  ldconfig -p 2>/dev/null | grep -E 'cudart|cublas|cudnn|cufft|curand|nvrtc|libcuda\.' || echo "(none in the loader cache)"
  echo "--- python3 onnxruntime"
  python3 -c 'import onnxruntime; print(onnxruntime.__version__, onnxruntime.get_available_providers())' 2>&1 | tail -1
  echo "--- python3 nvidia packages"
  python3 -c 'import nvidia, os; print(list(nvidia.__path__))' 2>&1 | tail -1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1 | tail -1
  echo "--- candidate library directories (with CUDA libraries in them)"
  for dir in $(candidate_dirs); do
    libs=$(ls "$dir" 2>/dev/null | grep -E '^lib(cudart|cublas|cublasLt|curand|cufft|cudnn|nvrtc|cuda)\.so' | tr '\n' ' ')
    [ -n "$libs" ] && echo "$dir: $libs"
  done
  ls -d /usr/local/cuda* 2>/dev/null | sed 's/^/toolkit: /'
  echo "--- what libonnxruntime_providers_cuda.so (ORT 1.29.0, CUDA 13) needs, and where it would come from"
  locate_libs
}

# ---------------------------------------------------------------------------------------------------------------
# Which parts are here?
# ---------------------------------------------------------------------------------------------------------------
step "device-run.sh in $REPO; OUT=$OUT; device under test: $CHECK_DEVICE"
SUMS=""
for candidate in "$GPU_DIR/SHA256SUMS" "$GPU_DIR"/p*/SHA256SUMS; do [ -f "$candidate" ] && { SUMS=$candidate; break; }; done
if [ -z "$SUMS" ]; then
  echo "no .gpu/SHA256SUMS and no .gpu/p*/ part folder here: was a part carried (carry [\".gpu/p1\"])?"
  PARTS_TOTAL=0
else
  cp "$SUMS" "$DEST/SHA256SUMS"
  PARTS_TOTAL=$(wc -l < "$DEST/SHA256SUMS")
fi
PRESENT=0
MISSING=""
while read -r sum part; do
  [ -n "$part" ] || continue
  if [ -f "$GPU_DIR/$part" ]; then
    if [ "$(sha256sum "$GPU_DIR/$part" | cut -d' ' -f1)" = "$sum" ]; then PRESENT=$((PRESENT + 1)); echo "part $part: present, checksum ok"
    else echo "part $part: present but its CHECKSUM DIFFERS (carry it again)"; MISSING="$MISSING ${part%%/*}"; fi
  else MISSING="$MISSING ${part%%/*}"; fi
done < <([ -f "$DEST/SHA256SUMS" ] && cat "$DEST/SHA256SUMS")
echo "parts: $PRESENT of $PARTS_TOTAL present${MISSING:+; still to carry:$MISSING}"

# ---------------------------------------------------------------------------------------------------------------
# Not everything here yet: facts, and an early check of node and redis-server from the first part.
# ---------------------------------------------------------------------------------------------------------------
if [ "$PARTS_TOTAL" -eq 0 ] || [ "$PRESENT" -lt "$PARTS_TOTAL" ]; then
  step "facts about this machine (also in \$OUT/facts.txt)"
  facts 2>&1 | tee "$OUT/facts.txt"
  FIRST=$(ls "$GPU_DIR"/p1/gantry-gpu.tar.* 2>/dev/null | head -1)
  FIRST_SHA=$([ -n "$FIRST" ] && sha256sum "$FIRST" | cut -d' ' -f1)
  if [ -n "$FIRST" ] && [ -f "$DEST/early-check.done" ] && [ "$(cat "$DEST/early-check.done")" = "$FIRST_SHA" ]; then
    echo "early check of node and redis-server already done by an earlier call (same part 1):"
    cat "$DEST/early-check.txt" 2>/dev/null
  elif [ -n "$FIRST" ]; then
    step "early check from the first part: unpack base.tar.xz (complete inside part 1) and run node and redis-server"
    mkdir -p "$DEST/in"
    # The first part is the start of one tar stream; tar extracts the members it holds whole and then
    # complains about the cut-off end, which is expected here.
    tar -xf "$FIRST" -C "$DEST/in" MANIFEST base.tar.xz 2>/dev/null
    rm -rf "$DEST/root" && mkdir -p "$DEST/root"
    if [ -s "$DEST/in/base.tar.xz" ] && xz_cat "$DEST/in/base.tar.xz" | tar -xf - -C "$DEST/root"; then
      # Remembered, so the final call need not unpack it again while the machine stays warm.
      sha256sum "$DEST/in/base.tar.xz" | cut -d' ' -f1 > "$DEST/root/.base-sha256"
      {
        cat "$DEST/root/MANIFEST"
        echo "node: $("$DEST/root/node/bin/node" --version 2>&1)"
        echo "redis-server: $(LD_LIBRARY_PATH="$DEST/root/redis/lib" "$DEST/root/redis/bin/redis-server" --version 2>&1)"
        echo "onnxruntime-node binding (CPU): $(cd "$DEST/root/app" && "$DEST/root/node/bin/node" -e "
          const ort = require('onnxruntime-node');
          ort.InferenceSession.create('test/fixtures/models/identity-float.onnx')
            .then((s) => s.run({ input: new ort.Tensor('float32', Float32Array.from([1, 2]), [1, 2]) }))
            .then((r) => console.log('ok', ort.env.versions.node, Array.from(r.output.data).join(',')), (e) => console.log('FAILED', e.message));" 2>&1)"
      } | tee "$DEST/early-check.txt"
      echo "$FIRST_SHA" > "$DEST/early-check.done"
    else
      echo "base.tar.xz from part 1 is incomplete (unexpected: prepare-payload.sh puts it first)"
    fi
  fi
  step "not all parts here yet (${PRESENT}/${PARTS_TOTAL})${MISSING:+: carry$MISSING}; nothing else to do"
  finish 0
fi

# ---------------------------------------------------------------------------------------------------------------
# All parts here: reassemble.
# ---------------------------------------------------------------------------------------------------------------
step "facts (written to \$OUT/facts.txt)"
facts > "$OUT/facts.txt" 2>&1
grep -A3 -- '--- nvidia-smi' "$OUT/facts.txt" | tail -n +2 | head -12
sed -n '/--- what libonnxruntime_providers_cuda.so/,$p' "$OUT/facts.txt"

step "reassembling $PARTS_TOTAL parts into $DEST/in"
rm -rf "$DEST/in" && mkdir -p "$DEST/in"
# Parts in checksum-file order (p1, p2, …: the order split wrote them).
(cd "$GPU_DIR" && cat $(awk '{print $2}' "$DEST/SHA256SUMS")) | tar -xf - -C "$DEST/in" || die "the reassembled stream is not a valid tar"
ls -l "$DEST/in"
cat "$DEST/in/MANIFEST"

BASE_SHA=$(sha256sum "$DEST/in/base.tar.xz" | cut -d' ' -f1)
if [ -f "$DEST/root/.base-sha256" ] && [ "$(cat "$DEST/root/.base-sha256")" = "$BASE_SHA" ] && [ -x "$DEST/root/node/bin/node" ]; then
  echo "base already unpacked by an earlier call (same base.tar.xz): reused"
else
  step "unpacking base.tar.xz into $DEST/root"
  rm -rf "$DEST/root" && mkdir -p "$DEST/root"
  xz_cat "$DEST/in/base.tar.xz" | tar -xf - -C "$DEST/root" || die "could not unpack base.tar.xz"
  echo "$BASE_SHA" > "$DEST/root/.base-sha256"
fi
APP=$DEST/root/app
NODE=$DEST/root/node/bin/node
ORT_BIN=$APP/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
CUDA_SO=$ORT_BIN/libonnxruntime_providers_cuda.so
if (cd "$DEST/root" && sha256sum -c --quiet CUDA_SHA256 >/dev/null 2>&1); then
  echo "libonnxruntime_providers_cuda.so already in place (checksum ok)"
else
  step "unpacking libonnxruntime_providers_cuda.so next to libonnxruntime.so.1"
  xz_cat "$DEST/in/libonnxruntime_providers_cuda.so.xz" > "$CUDA_SO.partial" || die "could not unpack the CUDA provider library"
  mv "$CUDA_SO.partial" "$CUDA_SO"
  (cd "$DEST/root" && sha256sum -c CUDA_SHA256) || die "libonnxruntime_providers_cuda.so checksum differs from the one packed"
fi
ls -l "$ORT_BIN"
# The inputs are no longer needed; the disk is small.
rm -f "$DEST/in/base.tar.xz" "$DEST/in/libonnxruntime_providers_cuda.so.xz"

# ---------------------------------------------------------------------------------------------------------------
# Loader path for the CUDA provider: one directory per library it needs (first found wins).
# ---------------------------------------------------------------------------------------------------------------
step "CUDA libraries for libonnxruntime_providers_cuda.so"
CUDA_LD=""
while IFS=$'\t' read -r lib dir; do
  printf '  %-20s %s\n' "$lib" "$dir"
  if [ "$dir" != MISSING ]; then
    case ":$CUDA_LD:" in *":$dir:"*) ;; *) CUDA_LD=${CUDA_LD:+$CUDA_LD:}$dir ;; esac
  fi
done < <(locate_libs)
# Then every other pip nvidia lib directory, for what those libraries need in turn (nvJitLink, cuDNN's parts…);
# sonames carry the major version, so a CUDA 12 directory among them cannot shadow a CUDA 13 library.
for dir in $(candidate_dirs | grep '/nvidia/'); do
  case ":$CUDA_LD:" in *":$dir:"*) ;; *) CUDA_LD=${CUDA_LD:+$CUDA_LD:}$dir ;; esac
done
export LD_LIBRARY_PATH=${CUDA_LD}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
{
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "--- ldd libonnxruntime_providers_cuda.so"; ldd "$CUDA_SO" 2>&1
  echo "--- ldd libonnxruntime.so.1"; ldd "$ORT_BIN/libonnxruntime.so.1" 2>&1
  # cuDNN is not a NEEDED entry of the provider (it is opened at run time), so check it separately.
  for lib in libcudnn.so.9; do
    for dir in ${LD_LIBRARY_PATH//:/ }; do
      if [ -e "$dir/$lib" ]; then echo "--- ldd $dir/$lib"; ldd "$dir/$lib" 2>&1; break; fi
    done
  done
} > "$OUT/ldd-cuda.txt"
if grep -q 'not found' "$OUT/ldd-cuda.txt"; then
  echo "UNRESOLVED libraries (the CUDA probe will fail and say why):"; grep 'not found' "$OUT/ldd-cuda.txt" | sort -u
else
  echo "ldd: every library of libonnxruntime_providers_cuda.so resolves (details in \$OUT/ldd-cuda.txt)"
fi

# ---------------------------------------------------------------------------------------------------------------
# Redis on a free port, without persistence (the check needs nothing to survive).
# ---------------------------------------------------------------------------------------------------------------
step "redis-server"
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
redis_ping() { (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'PING\r\n' >&3 && timeout 2 head -c 7 <&3) 2>/dev/null | grep -q PONG; }
PORT=${GANTRY_GPU_REDIS_PORT:-6390}
while ! port_free "$PORT"; do PORT=$((PORT + 1)); done
REDIS_BIN=$DEST/root/redis/bin/redis-server
start_redis() { # start_redis <binary> <LD_LIBRARY_PATH>
  LD_LIBRARY_PATH=$2 "$1" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --protected-mode yes > "$DEST/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 50); do redis_ping "$PORT" && return 0; kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
  return 1
}
if start_redis "$REDIS_BIN" "$DEST/root/redis/lib"; then
  echo "packed redis-server (pid $REDIS_PID) answers on 127.0.0.1:$PORT"
elif command -v redis-server >/dev/null && start_redis "$(command -v redis-server)" ""; then
  echo "packed redis-server failed ($(tail -3 "$DEST/redis.log")); the machine's own answers on $PORT"
else
  tail -20 "$DEST/redis.log"
  die "no redis-server could be started"
fi
export REDIS_URL=redis://127.0.0.1:$PORT

# ---------------------------------------------------------------------------------------------------------------
# CUDA probe alone (the same one the worker runs at start-up), then the check.
# ---------------------------------------------------------------------------------------------------------------
export PATH=$DEST/root/node/bin:$PATH
cd "$APP" || die "no $APP"
if [ "$CHECK_DEVICE" = cuda ]; then
  step "CUDA probe (dist/src/worker/cuda-probe.js: CUDA-only session for an Identity model, run once)"
  timeout 90 "$NODE" -e "
    import('./dist/src/worker/cuda-probe.js').then((m) => m.probeCuda()).then((problem) => {
      console.log(problem === undefined ? 'CUDA probe: OK (CUDA execution provider created and ran)' : 'CUDA probe FAILED: ' + problem);
    });" 2>&1 | tail -30
fi

step "gpu-check (device under test: $CHECK_DEVICE; args: ${GANTRY_GPU_CHECK_ARGS:-none})"
rm -rf "$DEST/logs"
# shellcheck disable=SC2086 # GANTRY_GPU_CHECK_ARGS is a list of words on purpose
GANTRY_GPU_CHECK_DEVICE=$CHECK_DEVICE timeout -k 10 "${GANTRY_GPU_TIMEOUT:-330}" "$NODE" dist/bench/gpu-check.js \
  --out "$OUT/gpu-report.md" --log-dir "$DEST/logs" ${GANTRY_GPU_CHECK_ARGS:-}
STATUS=$?
[ "$STATUS" -eq 124 ] && echo "gpu-check was stopped by timeout after ${GANTRY_GPU_TIMEOUT:-330} s"
step "gpu-check exited $STATUS ($([ "$STATUS" -eq 0 ] && echo PASS || echo FAIL)); report: \$OUT/gpu-report.md"
finish "$STATUS"
