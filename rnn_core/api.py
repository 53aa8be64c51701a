"""The Python API: what ``run``, ``compare`` and ``generate`` do, as functions for notebooks and
scripts. Every function here is a thin layer over the book's ``train_and_predict_rnn``
(:mod:`rnn_core.train`), ``predict_rnn`` (:mod:`rnn_core.predict`) and the checkpoints
(:mod:`rnn_core.checkpoint`); nothing is implemented twice.

    from rnn_core import api
    result = api.train("torch", num_epochs=20, num_hiddens=64)   # the book's settings otherwise
    result.perplexities[-1], result.samples["分开"]
    result.figure()                                              # a matplotlib Figure
    api.generate(result, "分开", 20)
    comparison = api.compare(api.available_backends(), num_epochs=20, num_hiddens=64)
    print(comparison.table()); comparison.figure()

Settings are :class:`rnn_core.train.TrainConfig`'s fields, by their book names (``num_hiddens``,
``num_steps``, ``batch_size``, ``lr``, ``clipping_theta``, ``num_epochs``, ``pred_period``,
``pred_len``, ``prefixes``, ``sampling``, ``seed``, ``grad``, ``book_path``, ``model``,
``optimizer``, ``init``, ``cell``, ``variant``, ``num_layers``); those not given are the book's
for the model, optimiser and cell (:func:`rnn_core.train.book_defaults`). Nothing here changes
process-wide state: figures are built with matplotlib's object-oriented API (in Jupyter,
``%matplotlib inline`` draws them).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from rnn_core import checkpoint, model, outputs
from rnn_core.backend import (BACKEND_NAMES, REFERENCE, backend_names, canonical_name,
                              get_backend, has, is_installed)
from rnn_core.data import DEFAULT_MAX_CHARS, Vocab, load_corpus, preprocessing_of, usable_prefix
from rnn_core.errors import BackendUnavailable, RNNCoreError, interruption
from rnn_core.optim import OPTIMIZERS
from rnn_core.plot import perplexity_figure     # part of the API too
from rnn_core.predict import predict_rnn
from rnn_core.train import (EpochResult, TrainConfig, book_defaults, epochs, make_forward,
                            resolve_grad, train_and_predict_rnn, weight_shapes)

SETTINGS = tuple(f.name for f in dataclasses.fields(TrainConfig))

# The errors that the core and the backends raise name the command line's options (``lower --lr``,
# ``use --device cpu``); a notebook's user gave keywords instead. The options whose keyword is not
# the option's words joined by '_' (``--batch-size``: ``batch_size``):
KEYWORDS = {"epochs": "num_epochs", "hidden": "num_hiddens", "clip": "clipping_theta",
            "layers": "num_layers"}
_OPTION = re.compile(r"(?<![\w=-])--([a-z][a-z0-9-]*)(?![\w=])"        # --device, not --xla_...
                     r"(?: (cpu|gpu|auto|scratch|concise|autograd|bptt|\d+)\b)?")  # and a value


def in_api_terms(message: str) -> str:
    """``message`` with each command-line option written as this API's keyword: ``use --device
    cpu`` -> ``use device='cpu'``, ``lower --lr (now 100.0)`` -> ``lower lr (now 100.0)``."""
    def keyword(match):
        option, value = match.groups()
        name = KEYWORDS.get(option, option.replace("-", "_"))
        if value is None:
            return name
        return f"{name}={value}" if value.isdigit() else f"{name}={value!r}"

    return _OPTION.sub(keyword, message)


def _api_terms(fn: Callable) -> Callable:
    """``fn``, whose :class:`RNNCoreError` names the API's keywords, not the command line's
    options (``fn.__wrapped__`` keeps the options' words, for the tools that call it)."""
    @functools.wraps(fn)
    def with_keywords(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RNNCoreError as error:
            error.args = tuple(in_api_terms(a) if isinstance(a, str) else a for a in error.args)
            for part in ("facts", "fix"):               # TrainingDiverged, CorpusTooShort
                if isinstance(getattr(error, part, None), str):
                    setattr(error, part, in_api_terms(getattr(error, part)))
            raise

    return with_keywords


@dataclass
class TrainResult:
    """One model trained on one backend: what :func:`train` returns."""
    backend: str                      # the backend's name: 'numpy', 'torch', 'tf', 'mxnet', ...
    device: str                       # where it ran, in the framework's words
    corpus: str                       # the corpus's name
    config: TrainConfig               # every setting, the book's defaults filled in
    history: list                     # one rnn_core.train.EpochResult per epoch
    samples: dict                     # prefix -> the final model's greedy continuation
    params: tuple | None              # NumPy float32 weights, the canonical NamedTuple (RNNParams)
    idx_to_char: list                 # the vocabulary, index -> character
    unk: bool = False                 # whether the vocabulary has '<unk>'
    precision: str = "float32"        # the backend's numerics (docs/gpu.md)
    deterministic: bool = False
    log: list = field(default_factory=list, repr=False)   # the book's printed lines
    on_gpu: bool = False              # whether it ran on the framework's GPU

    @property
    def perplexities(self) -> list:
        """The perplexity of every epoch, epoch 1 first."""
        return [epoch.perplexity for epoch in self.history]

    @property
    def seconds(self) -> list:
        """The seconds each epoch took (the first also compiles and warms caches)."""
        return [epoch.seconds for epoch in self.history]

    @property
    def vocab(self) -> Vocab:
        return Vocab.from_list(self.idx_to_char, unk=self.unk)

    def figure(self, title: str | None = None):
        """The perplexity curve, a ``matplotlib.figure.Figure`` (log scale)."""
        return perplexity_figure({self.backend: self.perplexities}, title if title is not None
                                 else f"{self.config.model} model on {self.backend}")

    def to_dict(self) -> dict:
        """Everything but the weights, as JSON-ready values (what ``compare`` sends between
        processes); :meth:`from_dict` reads it back."""
        return {"backend": self.backend, "device": self.device, "corpus": self.corpus,
                "config": dataclasses.asdict(self.config) | {"prefixes": list(self.config.prefixes)},
                "history": [{"epoch": e.epoch, "perplexity": e.perplexity, "seconds": e.seconds,
                             "tokens": e.tokens} for e in self.history],
                "samples": self.samples, "idx_to_char": self.idx_to_char, "unk": self.unk,
                "precision": self.precision, "deterministic": self.deterministic, "log": self.log,
                "on_gpu": self.on_gpu}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainResult":
        config = TrainConfig(**{**data["config"], "prefixes": tuple(data["config"]["prefixes"])})
        history = [EpochResult(e["epoch"], e["perplexity"], e["seconds"], e["tokens"],
                               np.array([])) for e in data["history"]]
        return cls(data["backend"], data["device"], data["corpus"], config, history,
                   data["samples"], None, data["idx_to_char"], data["unk"], data["precision"],
                   data["deterministic"], data["log"], data.get("on_gpu", False))


def available_backends(names: Iterable[str] = BACKEND_NAMES) -> list:
    """The backends among ``names`` (default: all) whose framework and backend module are
    installed, in order. Nothing is imported to find out."""
    return [canonical_name(name) for name in names if is_installed(name)]


@_api_terms
def make_config(**settings) -> TrainConfig:
    """The book's :class:`TrainConfig` for ``settings['model']`` and ``settings['optimizer']``
    (default scratch and SGD), with the other ``settings`` put in. An unknown name is refused."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise RNNCoreError(f"unknown setting {', '.join(map(repr, unknown))}: the settings are "
                           f"{', '.join(SETTINGS)}")
    if settings.get("optimizer", "sgd") not in OPTIMIZERS:
        raise RNNCoreError(f"unknown optimizer {settings['optimizer']!r}: choose "
                           f"{' or '.join(OPTIMIZERS)}")
    for name, value in settings.items():
        check_setting(name, value)
    if isinstance(settings.get("prefixes"), str):    # prefixes="分开": one prefix, not two
        settings["prefixes"] = (settings["prefixes"],)
    defaults = book_defaults(settings.get("model", "scratch"), settings.get("optimizer", "sgd"),
                             settings.get("cell", "rnn"))
    config = TrainConfig(**{**defaults, **settings})
    config.prefixes = tuple(config.prefixes)
    return config


# What each numeric or yes/no setting must be (the command line's option types check the same).
_COUNTS = {"num_epochs": 1, "num_hiddens": 1, "num_steps": 1, "batch_size": 1, "num_layers": 1,
           "pred_period": 0, "pred_len": 0, "seed": 0}          # the smallest each may be
_RATES = ("lr", "clipping_theta")                               # positive, finite
_SWITCHES = ("book_path",)


def check_setting(name: str, value) -> None:
    """Refuse, in one line that names it, a setting of the wrong kind or out of range:
    ``num_epochs=0``, ``lr=-1``, ``num_hiddens='8'``, ``book_path='no'``."""
    if name in _COUNTS and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                            or value < _COUNTS[name]):
        least = "a positive integer" if _COUNTS[name] else "an integer, 0 or more"
        raise RNNCoreError(f"{name}={value!r}: must be {least}")
    if name in _RATES and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                           or not 0 < value < math.inf):
        raise RNNCoreError(f"{name}={value!r}: must be a positive finite number")
    if name in _SWITCHES and not isinstance(value, bool):
        raise RNNCoreError(f"{name}={value!r}: must be True or False")
    if name == "prefixes" and (isinstance(value, (bytes, bytearray)) or not all(
            isinstance(p, str) for p in ([value] if isinstance(value, str) else
                                         [None] if value is None else value))):
        raise RNNCoreError(f"prefixes={value!r}: give a string, or a tuple of strings, for "
                           "example prefixes=('分开', '不分开')")


@_api_terms
def train(backend: str = "numpy", corpus: str | os.PathLike | None = None, *,
          device: str = "auto", precision: str = "float32", deterministic: bool = False,
          max_chars: int = DEFAULT_MAX_CHARS, verbose: bool = True,
          save: str | os.PathLike | None = None,
          on_epoch: Callable[[EpochResult, int], None] | None = None,
          **settings) -> TrainResult:
    """Train the chapter's model on ``backend`` with the book's settings, as ``run`` does.

    ``corpus``: 'jaychou', 'timemachine', a ``.txt``/``.zip`` path, or None for the project's
    small ``lyrics_zh``; its first ``max_chars`` characters (0: all). ``settings``: any
    :class:`TrainConfig` field, for example ``num_epochs=20, num_hiddens=64, lr=1``.
    ``device``, ``precision`` and ``deterministic`` are :func:`rnn_core.get_backend`'s (IEEE
    float32 unless ``precision='tf32'``; docs/gpu.md). ``verbose`` prints the book's lines every
    ``pred_period`` epochs as they come (they are kept in ``result.log`` either way). ``save``
    writes a checkpoint (see ``run --save``) that :func:`generate` reads.
    ``on_epoch(epoch_result, num_epochs)`` is called after every epoch. Returns a
    :class:`TrainResult`.
    """
    config = make_config(**settings)
    ops = get_backend(backend, device, precision=precision, deterministic=deterministic)
    text = load_corpus(corpus, max_chars=max_chars)
    vocab = text.vocab
    if "prefixes" not in settings:          # the corpus's own, as run's: 'time traveller' ...
        config.prefixes = text.prefixes
    config.prefixes = tuple(                # ... as its preprocessing writes them; checked
        usable_prefix(prefix, text.preprocessing, vocab, "prefixes", text.prefixes[0])
        for prefix in config.prefixes)      # before training, not after it
    if save is not None:    # refused before training, as run refuses --save: the corpus, a file
        outputs.check_distinct({"corpus": text.source, "save": save})   # of another kind, ...
        checkpoint.check_save_path(save, "save", weight_shapes(vocab.vocab_size, config),
                                   vocab.vocab_size, config)
    resolve_grad(ops, config)
    forward = make_forward(ops, vocab.vocab_size, config)
    lines = []

    def log(line: str) -> None:
        lines.append(line)
        if verbose:
            print(line, flush=True)

    params, history = train_and_predict_rnn(ops, text, config, log=log, save=save,
                                            on_epoch=on_epoch)
    samples = {prefix: predict_rnn(ops, prefix, config.pred_len, params, vocab, forward=forward)
               for prefix in config.prefixes}
    return TrainResult(ops.name, ops.device, text.name, config, history, samples,
                       model.params_to_numpy(ops, params), list(vocab.idx_to_char),
                       vocab.unk is not None, ops.precision, ops.deterministic, lines,
                       on_gpu=ops.device == ops.gpu_device)


@dataclass
class Comparison:
    """The same model trained on several backends: what :func:`compare` returns."""
    results: dict                                   # backend name -> TrainResult, in order
    skipped: dict = field(default_factory=dict)     # backend name -> why it did not run
    interrupted: bool = False                       # Ctrl-C stopped it: results are those done

    def figure(self, title: str | None = None):
        """Every backend's perplexity curve on one ``matplotlib.figure.Figure``."""
        first = next(iter(self.results.values()), None)
        if title is None:       # a concise comparison's reference is the scratch model
            models = list(dict.fromkeys(r.config.model for r in self.results.values()))
            title = (f"{' and '.join(models)} model{'s' * (len(models) > 1)}, "
                     f"{epochs(len(first.history))}, same seed" if first else "no backend ran")
        return perplexity_figure({name: r.perplexities for name, r in self.results.items()},
                                 title)

    def table(self, every: int | None = None) -> str:
        """Perplexity by epoch (rows) and backend (columns), every ``every`` epochs (default:
        about ten rows) and the last; a Markdown table."""
        names = list(self.results)
        num_epochs = max((len(r.history) for r in self.results.values()), default=0)
        every = every or max(1, num_epochs // 10)
        shown = sorted(set(range(every, num_epochs + 1, every)) | {num_epochs} - {0})
        lines = ["| epoch | " + " | ".join(names) + " |",
                 "| ---: |" + " ---: |" * len(names)]
        for epoch in shown:
            cells = [f"{r.perplexities[epoch - 1]:.3f}" if epoch <= len(r.history) else ""
                     for r in self.results.values()]
            lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def summary(self, reference: str = REFERENCE) -> str:
        """Per backend: the final perplexity, the largest difference of its loss curve (the log
        of the perplexity) from the ``reference`` backend's, the median seconds per epoch from
        the second epoch on (the first also compiles), and tokens per second; a Markdown table."""
        ref = self.results.get(reference)
        lines = [f"| backend | final perplexity | largest loss difference from {reference} | "
                 "s/epoch | tokens/s |", "| --- | ---: | ---: | ---: | ---: |"]
        for name, r in self.results.items():
            timed = r.history[1:] or r.history
            s_per_epoch = float(np.median([e.seconds for e in timed]))
            if ref is None:
                difference = f"no {reference} run"
            else:
                n = min(len(r.history), len(ref.history))
                difference = (f"{np.max(np.abs(np.log(r.perplexities[:n]) - np.log(ref.perplexities[:n]))):.2e}"
                              if n else "")
            lines.append(f"| {name} | {r.perplexities[-1]:.3f} | {difference} | "
                         f"{s_per_epoch:.3f} | {timed[0].tokens / s_per_epoch:,.0f} |")
        for name, why in self.skipped.items():
            lines.append(f"| {name} | skipped: {why} |  |  |  |")
        return "\n".join(lines)

    def samples_text(self) -> str:
        """The generated text of every backend, side by side: for each prefix, one line per
        backend."""
        width = max((len(name) for name in self.results), default=0)
        prefixes = dict.fromkeys(p for r in self.results.values() for p in r.samples)
        blocks = []
        for prefix in prefixes:
            blocks.append("\n".join(f"{name:>{width}}  {r.samples.get(prefix, '')}"
                                    for name, r in self.results.items()))
        return "\n\n".join(blocks)


@_api_terms
def compare(backends: Sequence[str] | None = None, corpus: str | os.PathLike | None = None, *,
            device: str = "auto", precision: str = "float32", deterministic: bool = False,
            max_chars: int = DEFAULT_MAX_CHARS, verbose: bool = True,
            **settings) -> Comparison:
    """Train the same model, from the same seed and weights, on each of ``backends`` (default:
    every installed one; a string names one, or several with commas: ``"numpy,torch"``), one
    after the other in this process; the arguments are
    :func:`train`'s. A backend whose framework is not installed is skipped, with the reason in
    ``comparison.skipped``. The concise model has no NumPy layer: NumPy trains the scratch
    model on the same weights, the same function, as the reference; NumPy, which has no GPU
    build, runs on the CPU whatever ``device`` says; ``device='gpu'`` where another framework
    sees no GPU is refused before any backend trains. ``verbose`` prints one line
    per backend as it finishes. Ctrl-C (a notebook's interrupt) stops the backend that is
    training and returns the ones that finished, with ``comparison.interrupted`` True and the
    stopped and unstarted ones in ``comparison.skipped``; where none had finished, the interrupt
    is raised. (``python -m rnn_core.compare`` runs each backend in its own
    process instead, so its timings do not share threads or memory.)"""
    names = backend_names(available_backends() if backends is None else backends)
    config = make_config(**settings)                # one set of settings for every backend
    if device == "gpu":         # a framework that sees no GPU is refused before any training
        for name in names:
            if has(name, "gpu") and is_installed(name):
                get_backend(name, "gpu", precision=precision, deterministic=deterministic)
    results, skipped = {}, {}
    for k, name in enumerate(names, start=1):
        try:
            results[name] = _train_for_comparison(
                name, corpus, config, device=device, max_chars=max_chars,
                numerics={"precision": precision, "deterministic": deterministic},
                own_prefixes="prefixes" not in settings)
        except BackendUnavailable as error:
            skipped[name] = str(error)
            continue
        except BaseException as error:      # Ctrl-C: the backends that finished are kept
            interrupt = interruption(error)
            if interrupt is None:
                raise
            if not results:
                raise interrupt
            skipped[name] = "interrupted"
            skipped.update({later: "not started (interrupted)" for later in names[k:]})
            if verbose:
                print(f"{name}: interrupted; the {len(results)} backend(s) that finished are "
                      "returned", flush=True)
            return Comparison(results, skipped, interrupted=True)
        if verbose:
            r = results[name]
            print(f"{name}: perplexity {r.perplexities[-1]:.3f} after {epochs(len(r.history))}, "
                  f"{sum(r.seconds):.1f} s", flush=True)
    return Comparison(results, skipped)


def _train_for_comparison(name: str, corpus, config: TrainConfig, *, device: str,
                          max_chars: int, numerics: dict | None = None,
                          on_epoch: Callable | None = None,
                          own_prefixes: bool = False) -> TrainResult:
    """One backend's run of a comparison (:func:`compare`, and each process of ``python -m
    rnn_core.compare``): NumPy, which has no GPU build, on the CPU; and where the backend has no
    RNN layer, the concise model's reference, the scratch model on the same weights."""
    settings = dataclasses.asdict(config)
    if own_prefixes:                                # the corpus's own, as train() takes them
        del settings["prefixes"]
    if settings["model"] == "concise" and not has(name, "layers"):
        settings["model"] = "scratch"               # the same weights and maths
    # train's errors as the core words them: compare's processes report them as the tool's
    return train.__wrapped__(name, corpus, device=device if has(name, "gpu") else "cpu",
                             max_chars=max_chars, verbose=False, on_epoch=on_epoch,
                             **(numerics or {}), **settings)


@_api_terms
def generate(source: TrainResult | str | os.PathLike, prefix: str, num_chars: int = 50, *,
             backend: str | None = None, device: str = "auto", precision: str = "float32",
             temperature: float | None = None,
             top_k: int | None = None, seed: int | None = None) -> str:
    """``prefix`` and ``num_chars`` characters generated by a trained model: a
    :class:`TrainResult` or the path of a checkpoint (``train(save=...)``, ``run --save``).

    Greedy, the book's ``predict_rnn``, by default; ``temperature > 0`` samples from
    ``softmax(logits / temperature)``, among the ``top_k`` most likely characters when given (at
    temperature 1 unless ``temperature`` says otherwise; 0 is refused), reproducibly with
    ``seed``. ``backend``: where to run it (default: the result's own, or numpy for a
    checkpoint); any backend runs any model's weights.
    """
    if isinstance(source, TrainResult):
        if source.params is None:
            raise RNNCoreError("this result holds no weights (it came from another process): "
                               "train with save=PATH and generate from the checkpoint")
        params, vocab, saved_config = source.params, source.vocab, dataclasses.asdict(source.config)
        backend, corpus = backend or source.backend, source.corpus
    else:
        saved = checkpoint.load(source)
        params, vocab = saved.params, Vocab.from_list(saved.idx_to_char, unk=saved.unk)
        saved_config = saved.config
        backend, corpus = backend or REFERENCE, saved.corpus
    example = (list(saved_config.get("prefixes") or ()) or [vocab.idx_to_char[-1]])[0]
    prefix = usable_prefix(prefix, preprocessing_of(corpus), vocab, "prefix", example)
    ops = get_backend(backend, device, precision=precision)
    kind = saved_config.get("model", "scratch")
    if kind == "concise" and not has(ops.name, "layers"):
        kind = "scratch"                        # the same weights and maths
    config = TrainConfig(num_hiddens=model.num_hiddens(params), model=kind,
                         **{k: v for k, v in saved_config.items()
                            if k in ("cell", "variant", "num_layers")})
    forward = make_forward(ops, vocab.vocab_size, config)
    return predict_rnn(ops, prefix, num_chars, model.params_to_backend(ops, params), vocab,
                       temperature=temperature, top_k=top_k, seed=seed, forward=forward)
