#!/usr/bin/env bash
# The GPU measurements of issues 2 and 3 in one short, prepared run, for a session lent a GPU.
#
# What it records (each script prints ratios and writes JSON + markdown):
#   benchmarks/render.py --targets-only  raster throughput vs cv2 (target >= 20x on a GPU),
#                                        distance_raster fwd+bwd at 256^2, batch 256 (target <= 10 ms
#                                        on an H100), and the CPU targets' cases on the GPU;
#   benchmarks/train.py --paper-only     the paper's BiLSTM (2 x 1024, batch 256, T = 100) against
#                                        PyTorch on the same GPU, and the projection of 345 x 7,000 x
#                                        10 epochs (target <= 2 h on an H100).
#
# In a session lent a device machine (see /work/.library/device/README.md), once here:
#   ln -sfn ../shared/data .gpu_data        # a link, ignored by git: the data is never copied in
# then one call of the device tool's `run`:
#   command: bash benchmarks/gpu_session.sh "$OUT"
#   carry:   [".gpu_data/quickdraw/simplified"]
#   timeout_s: 540
# The machine already has JAX, flax, optax, chex, OpenCV, Pillow and PyTorch; the repository is
# put on PYTHONPATH (nothing is installed). Each step has its own time limit, so a slow step
# leaves the others' results; everything lands in the given folder (at most 8 files, as the
# device tool returns). Copy the JSON / markdown into benchmarks/results/ with a GPU suffix and
# the numbers into RESULTS.md with the date, the device and the commit.
#
# Measured on an H200 (2026-12-04, RESULTS.md §1 "On a GPU"): 392 s wall at commit 8133381 (render
# stopped at its 300 s limit by a dense case that never finished — now skipped on an accelerator —
# and train 82 s), plus about a minute to start the machine. Before running it on a CPU to check
# the accelerator code paths, a sitecustomize.py on PYTHONPATH holding
# `import jax; jax.default_backend = lambda: "gpu"` makes render.py plan the GPU cases (185 s).
#
# Elsewhere (any machine with a GPU and `pip install -e ".[bench,cuda]"`):
#   bash benchmarks/gpu_session.sh out/gpu-session
set -uo pipefail

OUT_DIR=${1:-${OUT:-out/gpu-session}}
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd) || exit 2
cd "$(dirname "$0")/.." || exit 2
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ -z "${SKETCHJAX_DATA:-}" ] && [ -d .gpu_data/quickdraw/simplified ]; then
  export SKETCHJAX_DATA=$PWD/.gpu_data
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
RENDER_S=${GPU_SESSION_RENDER_S:-300}
TRAIN_S=${GPU_SESSION_TRAIN_S:-180}

{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  nvidia-smi -L 2>&1 || echo "nvidia-smi: not available"
  "$PY" -c "import jax, sys; print('python', sys.version.split()[0], '| jax', jax.__version__, '|', jax.default_backend(), jax.devices())"
  echo "SKETCHJAX_DATA=${SKETCHJAX_DATA:-<unset: ../shared/data>}"
} 2>&1 | tee "$OUT_DIR/device.txt"

backend=$("$PY" -c "import jax; print(jax.default_backend())" 2>/dev/null)
if [ "$backend" = "cpu" ] && [ -z "${GPU_SESSION_ALLOW_CPU:-}" ]; then
  echo "JAX sees no accelerator here: this script is for a GPU session (GPU_SESSION_ALLOW_CPU=1 runs it anyway)" >&2
  exit 2
fi

status=0
echo "== render ($RENDER_S s at most)" | tee -a "$OUT_DIR/device.txt"
timeout "$RENDER_S" "$PY" benchmarks/render.py --targets-only --out "$OUT_DIR" --case-timeout-s 60 \
    --time-budget-s $((RENDER_S * 2 / 3)) 2>&1 | tee "$OUT_DIR/render.log" || status=1
echo "== train ($TRAIN_S s at most)" | tee -a "$OUT_DIR/device.txt"
# One packed variant and short blocks: the 2 x 1024 step is timed a few dozen times per
# implementation (--paper-only skips the device-independent fit-rate sample, minutes of CPU).
timeout "$TRAIN_S" "$PY" benchmarks/train.py --paper-only --unroll 1 --pack 0.6 --cycles 3 --block-s 1.5 \
    --out "$OUT_DIR" 2>&1 | tee "$OUT_DIR/train.log" || status=1
ls -l "$OUT_DIR" | tee -a "$OUT_DIR/device.txt"
exit $status
