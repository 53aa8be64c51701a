"""Checkpoints that cross frameworks: one ``.npz`` file, written atomically, checked on load.

It holds the weights in the canonical layout of their cell (``W_xh``, ``W_hh``, ``b_h``, ``W_hq``,
``b_q`` for the RNN; :mod:`rnn_core.model`), the optimiser's state, and ``record.json`` (stored as
UTF-8 bytes): the vocabulary, the hyperparameters, the model kind, its cell, variant and number of
layers (a checkpoint without them is a one-layer RNN), the epoch reached, the perplexity of every
epoch, the sampler's random state, and a SHA-256 checksum of everything else. Any backend loads it: the weights are
NumPy arrays, moved onto the device by ``ops.asarray``. Read it without rnn-core with
``numpy.load(path)`` and ``json.loads(bytes(archive["record.json"]))``.

The file is written to a temporary file in the same folder, flushed to disk, then renamed over
the old one (:func:`rnn_core.outputs.write_atomically`): an interrupted or failed write never
replaces the last good checkpoint, and the new file gets the user's usual file mode. A path to a
user's corpus is recorded absolute, so ``--resume`` works from any folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from rnn_core import model
from rnn_core.errors import RNNCoreError
from rnn_core.outputs import check_output, write_atomically

FORMAT = "rnn-core checkpoint 1"


class CheckpointError(RNNCoreError, ValueError):
    """A checkpoint that is missing, damaged, or written for another vocabulary or shape."""


@dataclasses.dataclass
class Checkpoint:
    params: tuple                     # NumPy float32 arrays, a canonical parameter type
    opt_state: object                 # the optimiser's state, NumPy arrays in tuples and lists
    config: dict                      # TrainConfig fields
    idx_to_char: list
    unk: bool
    corpus: str                       # the name or path trained on
    max_chars: int
    epoch: int                        # epochs completed
    history: list                     # perplexity of each completed epoch
    rng_state: object                 # random.Random.getstate() of the sampler, after `epoch`


def _flatten(tree, arrays, prefix):
    """Tensors of nested tuples and lists -> named arrays, and a JSON description of the nesting."""
    if isinstance(tree, (tuple, list)):
        return {"type": type(tree).__name__,
                "items": [_flatten(item, arrays, f"{prefix}/{i}") for i, item in enumerate(tree)]}
    arrays[prefix] = np.asarray(tree)
    return prefix


def _unflatten(spec, arrays):
    if isinstance(spec, dict):
        items = [_unflatten(item, arrays) for item in spec["items"]]
        return tuple(items) if spec["type"] == "tuple" else items
    return arrays[spec]


def _checksum(arrays: dict, record: dict) -> str:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(name.encode() + str(array.dtype).encode() + str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _jsonable_rng_state(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def save(path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically; returns the path."""
    path = Path(path)
    arrays = {f"params/{name}": np.asarray(value, dtype=np.float32)
              for name, value in zip(type(checkpoint.params)._fields, checkpoint.params)}
    opt_spec = _flatten(checkpoint.opt_state, arrays, "opt")
    record = {"format": FORMAT, "config": checkpoint.config, "idx_to_char": checkpoint.idx_to_char,
              "unk": checkpoint.unk, "corpus": checkpoint.corpus,
              "max_chars": checkpoint.max_chars, "epoch": checkpoint.epoch,
              "history": checkpoint.history, "opt_state": opt_spec,
              "rng_state": _jsonable_rng_state(checkpoint.rng_state)}
    record["sha256"] = _checksum(arrays, record)
    arrays["record.json"] = np.frombuffer(json.dumps(record, ensure_ascii=False).encode(),
                                          dtype=np.uint8)
    # np.savez's layout, written here because np.savez leaves its archive open when Ctrl-C or
    # SIGTERM interrupts it, and Python then prints a traceback at exit; `with` closes it.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    return write_atomically(path, buffer.getvalue(), "the checkpoint")


def check_save_path(path, option: str, shapes, vocab_size: int, config) -> None:
    """Refuse, before training, a path that cannot or must not take the checkpoints of
    ``config``'s model, of weights ``shapes`` (``run --save``, ``api.train(save=...)``;
    :func:`outputs.check_output`): saved every ``pred_period`` epochs, each save is written
    beside the last before that goes."""
    check_output(path, option, "checkpoint",
                 estimated_size(shapes, vocab_size, config.optimizer, config.num_epochs),
                 rewritten=bool(config.pred_period) and config.num_epochs > config.pred_period)


def estimated_size(shapes, vocab_size: int, optimizer: str, num_epochs: int) -> int:
    """At least as many bytes as :func:`save` writes for weights of these ``shapes``: the float32
    weights, as many again for each of the optimiser's moments (Adam keeps two, and its step
    count), each array's headers in the archive (under 400 bytes, its name in the record
    included), the vocabulary, the perplexities, and the rest of the record (the sampler's random
    state alone is about 7.5 KB of JSON)."""
    copies = 1 + {"adam": 2}.get(optimizer, 0)
    num_arrays = len(shapes) * copies + (optimizer == "adam") + 1      # + record.json
    num_weights = sum(math.prod(shape) for shape in shapes)
    return (4 * num_weights * copies + 400 * num_arrays + 16 * vocab_size + 24 * num_epochs
            + 12288)


def load(path) -> Checkpoint:
    """Read and verify a checkpoint; a damaged one raises :class:`CheckpointError`."""
    path = Path(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise CheckpointError(f"checkpoint {str(path)!r} is not a file (a folder or a "
                                  "device); give the path that --save wrote")
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; give the path that "
                              "--save wrote") from None
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path} ({error.strerror}): make it "
                              "readable (chmod u+r) or copy it somewhere you can read") from error
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        record = json.loads(bytes(arrays.pop("record.json")).decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        # not NumPy's own message where it suggests unpickling the file, which would be unsafe
        why = "not a NumPy archive" if "pickle" in str(error) else str(error)
        raise CheckpointError(f"{path} is not a readable rnn-core checkpoint ({why}): it may be "
                              "truncated or not a checkpoint; use another one or train again") from error
    found = record.get("format") if isinstance(record, dict) else None
    if found != FORMAT:
        raise CheckpointError(f"{path} is not an rnn-core checkpoint (format {found!r}): use "
                              "another one or train again")
    expected = record.pop("sha256", None)
    if expected != _checksum(arrays, record):
        raise CheckpointError(f"{path} fails its checksum: the file was damaged or edited after it "
                              "was written; use another checkpoint or train again")
    try:        # a record of another shape (another version's, or one made by hand)
        return _from_record(path, record, arrays)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{path} holds a model this version cannot read ({error!r}): "
                              "use another checkpoint or train again") from error


def _from_record(path: Path, record: dict, arrays: dict) -> Checkpoint:
    config = record["config"]
    kind = model.params_type(config.get("cell", "rnn"), config.get("variant", "book"),
                             config.get("num_layers", 1))
    params = kind(*(arrays[f"params/{name}"] for name in kind._fields))
    vocab_size, num_hiddens = len(record["idx_to_char"]), config["num_hiddens"]
    shapes = model.param_shapes(kind, vocab_size, num_hiddens)
    if [p.shape for p in params] != shapes:
        raise CheckpointError(f"{path} holds weights of shapes {[p.shape for p in params]}, not "
                              f"those of its vocabulary and hidden size {shapes}")
    if not all(np.isfinite(p).all() for p in params):
        raise CheckpointError(f"{path} holds weights that are inf or NaN (saved by a run that "
                              "diverged): train again, with a lower --lr or --clip")
    if not isinstance(record["epoch"], int) or not isinstance(record["history"], list):
        raise TypeError(f"epoch {record['epoch']!r}, history of type "
                        f"{type(record['history']).__name__}")
    rng_version, rng_internal, rng_gauss = record["rng_state"]
    return Checkpoint(params=params, opt_state=_unflatten(record["opt_state"], arrays),
                      config=record["config"], idx_to_char=record["idx_to_char"],
                      unk=record["unk"], corpus=record["corpus"], max_chars=record["max_chars"],
                      epoch=record["epoch"], history=record["history"],
                      rng_state=(rng_version, tuple(rng_internal), rng_gauss))


def map_tree(fn, tree):
    """``fn`` applied to every tensor of nested tuples and lists (an optimiser's state)."""
    if isinstance(tree, (tuple, list)):
        return type(tree)(map_tree(fn, item) for item in tree)
    return fn(tree)


def check_compatible(checkpoint: Checkpoint, idx_to_char: list, num_hiddens: int | None = None,
                     corpus: str | None = None):
    """Refuse a checkpoint written for another vocabulary (or hidden size). ``corpus``: the spec
    of the corpus given (:attr:`rnn_core.data.Corpus.spec`), to tell an edited file apart."""
    if list(checkpoint.idx_to_char) != list(idx_to_char) and corpus == checkpoint.corpus:
        raise CheckpointError(
            f"the corpus {corpus} has changed since the checkpoint was written: its vocabulary "
            f"is now {len(idx_to_char)} characters, the checkpoint's {len(checkpoint.idx_to_char)}"
            + (" in another order" if len(idx_to_char) == len(checkpoint.idx_to_char) else "")
            + ": resume with the text as it was, or train again without --resume")
    if list(checkpoint.idx_to_char) != list(idx_to_char):
        raise CheckpointError(
            f"the checkpoint was written for another vocabulary ({len(checkpoint.idx_to_char)} "
            f"characters, corpus {checkpoint.corpus!r}) than this corpus's "
            f"({len(idx_to_char)} characters): resume with --corpus {checkpoint.corpus}")
    hidden = model.num_hiddens(checkpoint.params)
    if num_hiddens is not None and hidden != num_hiddens:
        raise CheckpointError(f"the checkpoint has hidden size {hidden}, not {num_hiddens}")
