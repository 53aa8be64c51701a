#!/usr/bin/env bash
# What a session with a lent GPU runs (issue 15). Every part tees its log into $OUT, which
# comes back.
#
#   here, once:   bash docs/scripts/gpu_session.sh prepare
#                 (the corpora into .data/, and the notebook tools, which the image lacks, with what
#                 they need, as wheels for the image's Python into .whl/; both are git-ignored)
#   one device call, with carry [".data", ".whl"] and timeout_s 590:
#                 bash docs/scripts/gpu_session.sh session
#   A session's device time is 15 minutes, the machine's start (minutes) included, and one call
#   may take 10: `session` runs the suite, bench's fast rows and the plain-JAX comparison in one
#   call, each under its own limit, and stops each at its limit with Ctrl-C, so that pytest and
#   the bench still print what they have (the failures' tracebacks, the table).
#   With more device time, the other parts are one call each (on the H100, 2026-11-24):
#     WORKERS=12 bash docs/scripts/gpu_session.sh tests --tb=short
#     WORKERS=4 bash docs/scripts/gpu_session.sh learning & bash docs/scripts/gpu_session.sh numerics; wait
#     bash docs/scripts/gpu_session.sh bench
#     bash docs/scripts/gpu_session.sh bench-tf32
#   The suite with 8 workers beside the learning tests and the full runs reached 80% in 10
#   minutes, and pytest prints its failures' tracebacks only at the end: give it a call alone.
#   A list of test ids to run again must come from that machine's own run: some ids differ
#   between installs, and pytest runs nothing when one is not found.
#
# session:    in this order, each stopped at its limit in seconds: the whole suite on the GPU, the
#             learning tests included, in WORKERS (default 14) processes of one thread each
#             (TESTS_S, default 320); bench's fast rows, two runs each of 5 epochs (BENCH_S, 140;
#             the book rows, JAX's two minutes a run, were measured on 2026-11-24, and the fast
#             path beat them 6-261 times); plain_jax_epoch.py (PLAIN_S, 60). A dry run on this
#             project's 2-core CPU (GPU=cpu WORKERS=2) stopped the suite 10 s after its limit.
# tests:      the suite on the GPU (RNN_CORE_TEST_DEVICE=gpu) for the frameworks the machine has,
#             the learning tests left out;
# learning:   the learning tests (minutes of training on the book's corpora) on the GPU;
# numerics:   full book runs (Jay Chou, 250 epochs, the fast path) of each backend and model in IEEE
#             float32 and with --tf32, side by side: the effect of TF32 on perplexity;
# bench:      bench's GPU rows in IEEE float32, two runs each (JAX's book path takes about two
#             minutes a run there, every op a launch);
# bench-tf32: bench's fast rows in IEEE float32 and with --tf32, one run each in one call (its
#             effect on speed), then the epoch as one program against one call per minibatch
#             (docs/scripts/epoch_loop.py), and JAX's epoch against a plain JAX program of it
#             (docs/scripts/plain_jax_epoch.py), in IEEE float32 and with --tf32.
# prepare:    here, not on the device machine: copies ../shared/data (SHARED=folder for another)
#             into .data/ and downloads the wheels into .whl/ with this machine's pip; the device
#             machine installs only those of distributions it does not have.
# BACKENDS (default: numpy torch jax, what the lent image has) and GPU=cpu (a dry run on a
# machine without one, with $OUT a temporary folder, short limits for session, and EPOCHS=2 for
# numerics) may be set.
# WORKERS=N spreads the tests over N processes with pytest-xdist (the image has it), with work
# stealing where its version has it. Arguments after tests or learning go to pytest (a file, -k,
# --lf).
set -euo pipefail
cd "$(dirname "$0")/../.."
parts="prepare, session, tests, learning, numerics, bench or bench-tf32"
part=${1:?"say which part: $parts"}
if [ "$part" = prepare ]; then
  shared=${SHARED:-../shared}
  test -e "$shared/data/timemachine.txt" || {
    echo "no corpora in $shared/data: set SHARED to the folder that holds data/" >&2; exit 2; }
  mkdir -p .data && cp "$shared"/data/* .data/
  rm -rf .whl
  # For the image's Python, 3.12 (docs/gpu.md): pip fetches nothing there.
  python3 -m pip download -q -c constraints/current.txt --only-binary=:all: -d .whl \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    jupytext nbclient nbformat ipykernel
  du -sh .data .whl
  exit 0
fi
backends=${BACKENDS:-numpy torch jax}
device=${GPU:-gpu}
out=${OUT:?"OUT: the folder the logs go to (the device tool sets it)"}
data=${RNN_CORE_DATA:-.data}
test -e "$data/timemachine.txt" || { echo "no corpora in $data: copy ../shared/data there and carry it" >&2; exit 2; }
# Absolute: the docs' tests run the pages' commands from folders of their own.
export PYTHONPATH=. PYTHONUNBUFFERED=1 RNN_CORE_DATA=$(cd "$data" && pwd) CI=true
python - <<'EOF' 2>&1 > "$out/versions.txt"
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
# The wheel's tests build and install it from an index, and the device machine has no network:
# under CI=true (what is missing fails, not skips) they would fail there for that alone.
pytest_args=(--ignore=tests/test_wheel.py)
if compgen -G ".whl/*.whl" >/dev/null; then   # packages the image lacks, carried as wheels
  # Only the wheels of distributions not installed here: a newer copy of one the frameworks use
  # (packaging, typing-extensions) would otherwise shadow the image's own.
  missing=$(python -c 'import sys
from importlib import metadata
for wheel in sys.argv[1:]:
    try:
        metadata.version(wheel.rsplit("/", 1)[-1].split("-")[0])
    except metadata.PackageNotFoundError:
        print(wheel)' .whl/*.whl)
  # shellcheck disable=SC2086
  [ -z "$missing" ] || flock /tmp/site.lock sh -c 'test -e /tmp/site/.done || {
    python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$@" &&
    touch /tmp/site/.done; }' sh $missing
  export PYTHONPATH=.:/tmp/site
fi
[ "$part" != session ] || WORKERS=${WORKERS:-14}   # of the machine's 16 CPUs
if [ -n "${WORKERS:-}" ]; then
  # Each worker is a process with its own JAX client, which would otherwise take 75% of the GPU.
  export XLA_PYTHON_CLIENT_PREALLOCATE=false
  pytest_args+=(-n "$WORKERS")
  # Work stealing (pytest-xdist 3.2 or later) lets an idle worker take tests queued on another,
  # as CI does; an older xdist keeps its default scheduling.
  if python -c 'import sys, xdist; sys.exit(tuple(map(int, xdist.__version__.split(".")[:2])) < (3, 2))' 2>/dev/null; then
    pytest_args+=(--dist worksteal)
  fi
fi
on_gpu=${backends/numpy/}       # the bench's table has one device: NumPy, CPU only, is left out
# `limit SECONDS COMMAND...` runs COMMAND and gives it Ctrl-C after SECONDS (then 30 s to end).
# Python makes Ctrl-C a KeyboardInterrupt only where it was not ignored at its start, as it is in
# a shell's background jobs, so the command starts with its default restored.
limit() {
  local seconds=$1 start=$SECONDS status=0
  shift
  python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' timeout --foreground -s INT -k 30 "$seconds" "$@" || status=$?
  echo "== took $((SECONDS - start)) s of $seconds, exit $status: $*"
}
case $part in
  session)
    # One BLAS thread a worker, as in CI: 14 workers' threads would contend for 16 CPUs.
    limit "${TESTS_S:-320}" env RNN_CORE_TEST_DEVICE="$device" OMP_NUM_THREADS=1 \
      MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python -m pytest -q -p no:cacheprovider \
      --backends "$comma" --durations 15 --tb=short -rfE "${pytest_args[@]}" "${@:2}" 2>&1 \
      | tee "$out/session-tests-$device.txt"
    # shellcheck disable=SC2086
    limit "${BENCH_S:-140}" python -m rnn_core.bench --device "$device" --backends $on_gpu \
      --paths fast --repeats 2 --epochs 5 --json "$out/session-bench-$device.json" 2>&1 \
      | tee "$out/session-bench-$device.txt"
    if [[ " $on_gpu " == *" jax "* ]]; then
      limit "${PLAIN_S:-60}" python docs/scripts/plain_jax_epoch.py --device "$device" 2>&1 \
        | tee "$out/session-plain-jax-$device.txt"
    fi ;;
  tests)
    RNN_CORE_TEST_DEVICE=$device python -m pytest -q -p no:cacheprovider --backends "$comma" \
      -m "not learning" --durations 15 "${pytest_args[@]}" "${@:2}" 2>&1 | tee "$out/tests-$device.txt" ;;
  learning)
    RNN_CORE_TEST_DEVICE=$device python -m pytest -q -p no:cacheprovider --backends "$comma" \
      -m learning --durations 15 "${pytest_args[@]}" "${@:2}" 2>&1 | tee "$out/learning-$device.txt" ;;
  numerics)
    # Several processes share the GPU here: none may take JAX's 75% of its memory.
    export XLA_PYTHON_CLIENT_PREALLOCATE=false
    for backend in $on_gpu; do
      for model in scratch concise; do
        for numerics in "" --tf32; do
          # shellcheck disable=SC2086
          (start=$SECONDS status=0
           python -m rnn_core.run --backend "$backend" --device "$device" --model "$model" \
             --corpus jaychou --max-chars 0 --pred-period 50 --pred-len 20 $numerics \
             ${EPOCHS:+--epochs $EPOCHS} > "/tmp/numerics-$backend-$model$numerics.txt" 2>&1 \
             || status=$?
           echo "took $((SECONDS - start)) s, exit $status" \
             >> "/tmp/numerics-$backend-$model$numerics.txt") &
        done
      done
    done
    wait
    for log in /tmp/numerics-*.txt; do echo "== $log"; cat "$log"; done | tee "$out/numerics-$device.txt" ;;
  bench)
    # shellcheck disable=SC2086
    python -m rnn_core.bench --device "$device" --backends $on_gpu --repeats 2 --epochs 4 \
      --json "$out/bench-$device.json" 2>&1 | tee "$out/bench-$device.txt" ;;
  bench-tf32)
    # shellcheck disable=SC2086
    for numerics in "" --tf32; do
      python -m rnn_core.bench --device "$device" --backends $on_gpu $numerics --paths fast \
        --repeats 1 --epochs 3 2>&1 | tee -a "$out/bench-$device-tf32.txt"
    done
    # shellcheck disable=SC2086
    python docs/scripts/epoch_loop.py --device "$device" --backends $on_gpu \
      2>&1 | tee "$out/epoch-loop-$device.txt"
    if [[ " $on_gpu " == *" jax "* ]]; then
      for numerics in "" --tf32; do
        # shellcheck disable=SC2086
        python docs/scripts/plain_jax_epoch.py --device "$device" $numerics \
          2>&1 | tee -a "$out/plain-jax-$device.txt"
      done
    fi ;;
  *)
    echo "unknown part $part: $parts" >&2; exit 2 ;;
esac
