#!/usr/bin/env bash
# Makes the logs in docs/logs: the full runs of docs/results.md, one after another.
#   RNN_CORE_DATA=../shared/data bash docs/scripts/full_runs.sh
# The Jay Chou logs keep the prefixes but not the generated lyrics (see docs/results.md).
# ONLY=REGEX makes only the logs whose names match it, for example ONLY='gru|lstm'.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
log() {   # log NAME ARGS...: run python -m rnn_core.run ARGS, write docs/logs/NAME.log
  local name=$1; shift
  if [[ -n ${ONLY:-} && ! $name =~ $ONLY ]]; then return; fi
  { echo "\$ python -m rnn_core.run $*"; "$PY" -m rnn_core.run "$@" 2>/dev/null; } > "docs/logs/$name.tmp"
  if [[ $name == jaychou-* ]]; then
    sed -E -i 's/^ - (不分开|分开).*$/ - \1… (generated characters not kept: see docs\/results.md)/' "docs/logs/$name.tmp"
  fi
  mv "docs/logs/$name.tmp" "docs/logs/$name.log"
}
for sampling in random consecutive; do
  for backend in numpy torch tf mxnet jax; do
    log "jaychou-scratch-$sampling-$backend" --backend "$backend" --corpus jaychou --sampling "$sampling"
  done
done
for optimizer in adam sgd; do
  for backend in torch tf mxnet jax; do
    log "jaychou-concise-$optimizer-$backend" --backend "$backend" --corpus jaychou --model concise --optimizer "$optimizer"
  done
done
log jaychou-concise-adam-normal-init-torch --backend torch --corpus jaychou --model concise --optimizer adam --init normal
log timemachine-scratch-consecutive-torch --backend torch --corpus timemachine --sampling consecutive \
  --hidden 512 --lr 1 --clip 1 --epochs 500 --pred-period 100 --prefixes "time traveller" traveller
# The GRU and the LSTM: the book's runs (160 epochs, consecutive sampling, SGD lr 100, θ 0.01).
for cell in gru lstm; do
  for backend in numpy torch tf mxnet jax; do
    log "jaychou-$cell-scratch-$backend" --backend "$backend" --corpus jaychou --cell "$cell"
  done
done
log jaychou-gru-reset_after-scratch-numpy --backend numpy --corpus jaychou --cell gru \
  --variant reset_after
# Their concise runs with the book's optimisers: Adam (the PyTorch port, lr 0.01) and SGD (Gluon).
for cell in gru lstm; do
  for optimizer in adam sgd; do
    for backend in torch tf mxnet jax; do
      log "jaychou-$cell-concise-$optimizer-$backend" --backend "$backend" --corpus jaychou \
        --cell "$cell" --model concise --optimizer "$optimizer"
    done
  done
done
# The Time Machine with the second edition's settings for the GRU, the LSTM and the deep LSTM
# (d2l 2.0 §10.1-10.3: hidden 256, 35 steps, batch 32, consecutive, SGD lr 1 (2 for the deep
# LSTM), clipping θ 1, 500 epochs; the concise layers keep PyTorch's own uniform init).
TM=(--corpus timemachine --sampling consecutive --hidden 256 --clip 1 --epochs 500
    --pred-period 100 --prefixes "time traveller" traveller)
for cell in gru lstm; do
  for backend in torch tf; do
    log "timemachine-$cell-scratch-$backend" --backend "$backend" --cell "$cell" --lr 1 "${TM[@]}"
  done
  log "timemachine-$cell-concise-sgd-torch" --backend torch --cell "$cell" --model concise \
    --optimizer sgd --init uniform --lr 1 "${TM[@]}"
done
log timemachine-lstm-2layers-concise-sgd-torch --backend torch --cell lstm --layers 2 \
  --model concise --optimizer sgd --init uniform --lr 2 "${TM[@]}"
