#!/usr/bin/env bash
# What a session with a lent GPU runs (issue 15), one part per device call, each well inside the
# device tool's 10 minutes a command. Every part tees its log into $OUT, which comes back.
#
#   here, once:   mkdir -p .data && cp ../shared/data/* .data/     (.data/ is git-ignored)
#   device call:  bash docs/scripts/gpu_session.sh tests      with carry [".data"]
#                 bash docs/scripts/gpu_session.sh learning   with carry [".data"]
#                 bash docs/scripts/gpu_session.sh bench      with carry [".data"]
#
# tests:    the suite on the GPU (RNN_CORE_TEST_DEVICE=gpu) for the frameworks the machine has,
#           the learning tests left for the next part;
# learning: the learning tests (minutes of training on the book's corpora) on the GPU;
# bench:    bench's GPU rows in IEEE float32 and with --tf32, then the epoch as one program
#           against one call per minibatch (docs/scripts/epoch_loop.py).
# BACKENDS (default: numpy torch jax, what the lent image has) and GPU=cpu (a dry run on a
# machine without one, with $OUT a temporary folder) may be set. WORKERS=N spreads the tests over
# N processes with pytest-xdist, carried as wheels in .whl/ (the image has no xdist, nor network):
#   here, once:   pip download --no-deps --only-binary=:all: -d .whl pytest-xdist execnet
set -euo pipefail
cd "$(dirname "$0")/../.."
part=${1:?"say which part: tests, learning or bench"}
backends=${BACKENDS:-numpy torch jax}
device=${GPU:-gpu}
out=${OUT:?"OUT: the folder the logs go to (the device tool sets it)"}
export PYTHONPATH=. PYTHONUNBUFFERED=1 RNN_CORE_DATA=${RNN_CORE_DATA:-.data} CI=true
test -e "$RNN_CORE_DATA/timemachine.txt" || { echo "no corpora in $RNN_CORE_DATA: copy ../shared/data there and carry it" >&2; exit 2; }
python - <<'EOF' 2>&1 | tee "$out/versions.txt"
import platform, subprocess
print("python", platform.python_version())
for name in ("numpy", "torch", "jax"):
    try:
        print(name, __import__(name).__version__)
    except ImportError:
        print(name, "not installed")
print(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
      if subprocess.run(["which", "nvidia-smi"], capture_output=True).returncode == 0 else "no nvidia-smi")
EOF
comma=$(echo "$backends" | tr ' ' ',')
spread=()
if [ -n "${WORKERS:-}" ]; then
  python -m pip install -q --no-index --no-deps --no-compile --target /tmp/xdist .whl/*.whl
  export PYTHONPATH=.:/tmp/xdist
  # Each worker is a process with its own JAX client, which would otherwise take 75% of the GPU.
  export XLA_PYTHON_CLIENT_PREALLOCATE=false
  spread=(-n "$WORKERS")
fi
on_gpu=${backends/numpy/}       # the bench's table has one device: NumPy, CPU only, is left out
case $part in
  tests)
    RNN_CORE_TEST_DEVICE=$device python -m pytest -q -p no:cacheprovider --backends "$comma" \
      -m "not learning" --durations 15 "${spread[@]}" 2>&1 | tee "$out/tests-$device.txt" ;;
  learning)
    RNN_CORE_TEST_DEVICE=$device python -m pytest -q -p no:cacheprovider --backends "$comma" \
      -m learning --durations 15 "${spread[@]}" 2>&1 | tee "$out/learning-$device.txt" ;;
  bench)
    # shellcheck disable=SC2086
    python -m rnn_core.bench --device "$device" --backends $on_gpu --repeats 3 --epochs 5 \
      --json "$out/bench-$device.json" 2>&1 | tee "$out/bench-$device.txt"
    # shellcheck disable=SC2086
    python -m rnn_core.bench --device "$device" --backends $on_gpu --tf32 --repeats 3 \
      --epochs 5 --json "$out/bench-$device-tf32.json" 2>&1 | tee "$out/bench-$device-tf32.txt"
    # shellcheck disable=SC2086
    python docs/scripts/epoch_loop.py --device "$device" --backends $on_gpu \
      2>&1 | tee "$out/epoch-loop-$device.txt" ;;
  *)
    echo "unknown part $part: tests, learning or bench" >&2; exit 2 ;;
esac
