"""The Python API (rnn_core/api.py): train, compare and generate on every backend, with tiny
settings (hidden 16, one or two epochs) so the file stays cheap."""
import dataclasses
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import device_for
from rnn_core import api, get_backend, model
from rnn_core.backend import REFERENCE, has
from rnn_core.data import load_corpus
from rnn_core.errors import BackendUnavailable, DeviceUnavailable, OutputError, RNNCoreError
from rnn_core.train import TrainConfig, book_defaults, train_and_predict_rnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"num_hiddens": 16, "pred_len": 6, "verbose": False}
STABLE = {"lr": 1.0, "clipping_theta": 1.0}     # the second edition's step: backends agree


def test_train_returns_the_core_loops_numbers(backend_name):
    result = api.train(backend_name, num_epochs=2, device=device_for(backend_name),
                       deterministic=True, **TINY)      # compared bit for bit, also on a GPU
    ops = get_backend(backend_name, device_for(backend_name), deterministic=True)
    config = TrainConfig(**{**book_defaults(), "num_hiddens": 16, "num_epochs": 2, "pred_len": 6})
    params, history = train_and_predict_rnn(ops, load_corpus(None), config, log=lambda _: None)
    assert result.backend == ops.name and result.corpus == "lyrics_zh"
    assert result.perplexities == [epoch.perplexity for epoch in history]
    assert len(result.seconds) == 2 and all(s > 0 for s in result.seconds)
    for got, want in zip(result.params, model.params_to_numpy(ops, params)):
        np.testing.assert_array_equal(got, want)
    V = len(result.idx_to_char)
    assert [p.shape for p in result.params] == [(V, 16), (16, 16), (16,), (16, V), (V,)]
    assert list(result.samples) == ["分开", "不分开"]
    assert all(text.startswith(p) and len(text) == len(p) + 6
               for p, text in result.samples.items())


def test_train_keeps_the_books_lines_and_prints_them_when_verbose(backend_name, capsys):
    quiet = api.train(backend_name, num_epochs=2, pred_period=1, device=device_for(backend_name),
                      **TINY)
    assert capsys.readouterr().out == ""
    assert quiet.log[0].startswith("epoch 1, perplexity") and len(quiet.log) == 6
    api.train(backend_name, num_epochs=1, pred_period=1, device=device_for(backend_name),
              **{**TINY, "verbose": True})
    assert capsys.readouterr().out.startswith("epoch 1, perplexity")


def test_figure_is_an_object_oriented_figure_with_the_curve(backend_name):
    from matplotlib.figure import Figure
    result = api.train(backend_name, num_epochs=2, device=device_for(backend_name), **TINY)
    figure = result.figure()
    assert isinstance(figure, Figure)
    (line,) = figure.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), result.perplexities)


def test_importing_and_plotting_changes_no_process_wide_state():
    code = ("import sys, matplotlib\n"
            "before = dict.__getitem__(matplotlib.rcParams, 'backend')\n"
            "from rnn_core import api\n"
            "r = api.train('numpy', num_epochs=1, num_hiddens=8, pred_len=2, verbose=False)\n"
            "r.figure().savefig(sys.argv[1])\n"
            "assert dict.__getitem__(matplotlib.rcParams, 'backend') == before\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code, os.devnull], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr


def test_generate_from_a_result_and_from_its_checkpoint(backend_name, tmp_path):
    path = tmp_path / "model.npz"
    device = device_for(backend_name)
    result = api.train(backend_name, num_epochs=2, save=path, device=device, **TINY, **STABLE)
    for prefix, text in result.samples.items():
        assert api.generate(result, prefix, 6, device=device) == text   # the book's greedy decoding
        assert api.generate(path, prefix, 6, backend=backend_name, device=device) == text
    a, b = (api.generate(result, "分开", 20, temperature=1.0, top_k=5, seed=3, device=device)
            for _ in "ab")
    assert a == b and len(a) == 22


def test_generate_refuses_a_result_without_weights(backend_name):
    result = api.train(backend_name, num_epochs=1, device=device_for(backend_name), **TINY)
    copy = api.TrainResult.from_dict(result.to_dict())
    assert copy.perplexities == result.perplexities and copy.samples == result.samples
    with pytest.raises(RNNCoreError, match="save=PATH"):
        api.generate(copy, "分开")


def test_compare_trains_each_backend_from_the_same_start(backend_name):
    names = list(dict.fromkeys([REFERENCE, backend_name]))
    comparison = api.compare(names, num_epochs=2, verbose=False, device=device_for(backend_name),
                             num_hiddens=16, pred_len=6, **STABLE)
    assert list(comparison.results) == names and comparison.skipped == {}
    reference, own = comparison.results[REFERENCE], comparison.results[backend_name]
    np.testing.assert_allclose(own.perplexities, reference.perplexities, rtol=1e-4)
    table = comparison.table().splitlines()
    assert table[0] == "| epoch | " + " | ".join(names) + " |" and len(table) == 4
    assert table[-1].startswith(f"| 2 | {reference.perplexities[-1]:.3f}")
    assert f"| {backend_name} | {own.perplexities[-1]:.3f} |" in comparison.summary()
    assert all(f"{name}  {r.samples['分开']}" in comparison.samples_text()
               for name, r in comparison.results.items())
    figure = comparison.figure().axes[0]
    assert len(figure.get_lines()) == len(names)
    assert figure.get_title() == "scratch model, 2 epochs, same seed"


def test_compare_concise_has_the_scratch_reference_on_the_same_settings(backend_name):
    comparison = api.compare([REFERENCE, backend_name], model="concise", num_epochs=1,
                             verbose=False, device=device_for(backend_name), num_hiddens=16,
                             pred_len=2, **STABLE)
    reference = comparison.results[REFERENCE]
    assert reference.config.model == "scratch" and reference.config.sampling == "consecutive"
    own = comparison.results[backend_name]
    assert own.config.sampling == "consecutive"
    assert own.config.model == ("concise" if has(backend_name, "layers") else "scratch")
    np.testing.assert_allclose(own.perplexities, reference.perplexities, rtol=1e-4)
    assert comparison.figure().axes[0].get_title() == (
        "scratch and concise models, 1 epoch, same seed" if own.config.model == "concise"
        else "scratch model, 1 epoch, same seed")


def test_compare_skips_a_backend_that_is_not_installed(backend_name, monkeypatch, capsys):
    def unavailable(name, device="auto", **numerics):
        raise BackendUnavailable(f"backend {name!r} needs a framework that is not installed")
    monkeypatch.setattr(api, "get_backend", unavailable)
    comparison = api.compare([backend_name])
    assert comparison.results == {} and "not installed" in comparison.skipped[backend_name]
    assert f"| {backend_name} | skipped:" in comparison.summary()


def test_available_backends_lists_every_installed_backend(backend_name):
    assert backend_name in api.available_backends()
    assert api.available_backends([backend_name, backend_name.upper()]) == [backend_name] * 2


@pytest.mark.parametrize("setting,value,message", [
    ("num_epochs", 0, "must be a positive integer"),
    ("num_hiddens", "8", "must be a positive integer"),
    ("num_steps", 2.5, "must be a positive integer"),
    ("pred_period", -1, "must be an integer, 0 or more"),
    ("seed", None, "must be an integer, 0 or more"),
    ("lr", 0, "must be a positive finite number"),
    ("lr", "1", "must be a positive finite number"),
    ("clipping_theta", -1.0, "must be a positive finite number"),
    ("clipping_theta", math.nan, "must be a positive finite number"),
    ("book_path", "no", "must be True or False"),
    ("prefixes", None, "give a string, or a tuple of strings"),
])
def test_a_setting_of_the_wrong_kind_or_range_is_one_line_naming_it(setting, value, message):
    """What the command line's option types refuse, the API refuses too, by the setting's name:
    before, ``lr=-1`` trained uphill, ``num_epochs=0`` returned nothing, ``book_path='no'`` was
    True, and ``num_hiddens='8'`` failed deep in NumPy."""
    with pytest.raises(RNNCoreError) as error:
        api.make_config(**{setting: value})
    assert str(error.value).startswith(f"{setting}={value!r}: {message}")
    assert api.make_config(num_hiddens=np.int64(8), lr=np.float32(0.5)).num_hiddens == 8


# Mistakes whose fix names a setting; the reference backend (NumPy) has no GPU build, no RNN
# layer and no autograd, which three of them need.
API_MISTAKES = [
    ({"lr": 1e30, "num_epochs": 2}, "lower lr (now 1e+30) or clipping_theta (now "),
    ({"batch_size": 100000}, "(or max_chars=0 to keep all of it), or a smaller batch_size or "
                             "num_steps"),
    ({"device": "gpu"}, "use device='cpu'"),
    ({"model": "concise"}, "use model='scratch'"),
    ({"grad": "autograd"}, "use grad='bptt'"),
]


@pytest.mark.parametrize("settings,fix", API_MISTAKES)
def test_the_apis_errors_name_its_keywords_not_the_command_lines_options(settings, fix):
    """A notebook's user gave ``lr=``, not ``--lr``: the fix says ``lower lr``, where the tools
    say ``lower --lr``."""
    assert not any(has(REFERENCE, need) for need in ("gpu", "layers", "autograd"))
    with pytest.raises(RNNCoreError) as error:
        api.train(REFERENCE, num_hiddens=8, verbose=False, **settings)
    assert fix in str(error.value) and " --" not in str(error.value), str(error.value)


def test_compares_processes_keep_the_command_lines_options():
    """``python -m rnn_core.compare`` runs each backend through the API's code: its errors keep
    the tool's options."""
    config = api.make_config(num_hiddens=8, num_epochs=2, lr=1e30)
    with pytest.raises(RNNCoreError, match=r"lower --lr \(now 1e\+30\) or --clip"):
        api._train_for_comparison(REFERENCE, None, config, device="cpu", max_chars=10_000)


def test_the_default_prefixes_are_the_corpus_own_as_runs(tmp_path):
    """Without ``prefixes=``, a corpus's own (a file's first word), as ``run`` and ``compare``
    take them; a string is one prefix; generate writes a prefix as the corpus's preprocessing
    does, as ``python -m rnn_core.generate`` does."""
    text = tmp_path / "words.txt"
    text.write_text("hello world, the time machine. " * 200, encoding="utf-8")
    tiny = {**TINY, "num_epochs": 1}
    result = api.train(REFERENCE, text, **tiny)
    assert list(result.samples) == ["hello"]
    assert list(api.compare(REFERENCE, text, **tiny).results[REFERENCE].samples) == ["hello"]
    assert list(api.train(REFERENCE, text, prefixes="the", **tiny).samples) == ["the"]
    with pytest.raises(RNNCoreError, match="^prefix '' is empty: give at least one character of "
                                           "the corpus to start from, for example prefix hello$"):
        api.generate(result, "")
    letters = dataclasses.replace(result, corpus="timemachine")   # lower-case letters only
    assert api.generate(letters, "The Time, Machine!", 5) == api.generate(
        letters, "the time  machine ", 5)


def test_a_save_path_that_must_not_be_written_is_refused_before_training(tmp_path):
    """As ``run --save`` is: a file of another kind is left alone, and so is the corpus; before,
    ``save=`` replaced either with a checkpoint."""
    notes, text = tmp_path / "notes.txt", tmp_path / "words.txt"
    notes.write_text("my notes", encoding="utf-8")
    text.write_text("hello world, the time machine. " * 200, encoding="utf-8")
    epochs_run = []
    tiny = {**TINY, "num_epochs": 1, "on_epoch": lambda *a: epochs_run.append(a)}
    with pytest.raises(OutputError, match=f"^save {notes} already exists and is not an rnn-core "
                                          "checkpoint: it is left alone"):
        api.train(REFERENCE, save=notes, **tiny)
    with pytest.raises(OutputError, match="^save and corpus name the same file"):
        api.train(REFERENCE, text, save=text, **tiny)
    assert epochs_run == [] and notes.read_text(encoding="utf-8") == "my notes"
    assert text.read_text(encoding="utf-8").startswith("hello world")


def test_compare_on_a_gpu_that_a_framework_does_not_see_trains_nothing(monkeypatch):
    """``device='gpu'`` where a named framework sees no GPU: refused before the first backend
    trains (before, NumPy, on the CPU whatever the device, trained first, and its work was lost).
    Which frameworks see a GPU here does not matter: none is made to."""
    def no_gpu(name, device="auto", **numerics):
        if device == "gpu":
            raise DeviceUnavailable(f"--device gpu: {name} sees no GPU")
        return get_backend(name, device, **numerics)
    monkeypatch.setattr(api, "get_backend", no_gpu)
    trained = []
    monkeypatch.setattr(api, "_train_for_comparison", lambda name, *a, **k: trained.append(name))
    with_gpu_build = [n for n in api.available_backends() if has(n, "gpu")]
    if not with_gpu_build:
        pytest.skip("no framework with a GPU build is installed")
    with pytest.raises(DeviceUnavailable):
        api.compare([REFERENCE, with_gpu_build[0]], device="gpu", num_epochs=1, verbose=False)
    assert trained == []


def test_compare_takes_one_backend_as_a_string(monkeypatch):
    trained = []
    monkeypatch.setattr(api, "_train_for_comparison", lambda name, *a, **k: trained.append(name))
    api.compare(f"{REFERENCE},{REFERENCE}", num_epochs=1, verbose=False)
    api.compare(REFERENCE, num_epochs=1, verbose=False)
    assert trained == [REFERENCE, REFERENCE]


def test_settings_are_the_books_with_the_ones_given():
    assert api.make_config(num_epochs=3).lr == 100 and api.make_config().sampling == "random"
    concise = api.make_config(model="concise", optimizer="adam")
    assert (concise.lr, concise.sampling, concise.init) == (1e-3, "consecutive", "uniform")
    with pytest.raises(RNNCoreError, match="unknown setting 'epochs'.*num_epochs"):
        api.make_config(epochs=3)
    with pytest.raises(RNNCoreError, match="unknown optimizer 'adagrad'"):
        api.make_config(optimizer="adagrad")
    assert math.isclose(api.make_config(lr=0.5).lr, 0.5)


def test_compare_interrupted_returns_the_backends_that_finished(backend_name, monkeypatch,
                                                                 capsys):
    """Ctrl-C (a notebook's interrupt) during the second backend: the first one's result is
    returned, not lost, as ``python -m rnn_core.compare`` still shows the backends that finished.
    The backends after the first never start, so which of them are installed does not matter."""
    others = [name for name in api.BACKEND_NAMES if name != backend_name][:2]
    train = api._train_for_comparison

    def interrupted_after_the_first(name, *args, **kwargs):
        if name != backend_name:
            raise KeyboardInterrupt
        return train(name, *args, **kwargs)

    monkeypatch.setattr(api, "_train_for_comparison", interrupted_after_the_first)
    try:                                            # not an interrupt of the test session
        comparison = api.compare([backend_name, *others], num_epochs=1, num_hiddens=8,
                                 pred_len=2, device=device_for(backend_name))
    except KeyboardInterrupt:
        pytest.fail("compare raised the interrupt and lost the backend that had finished")
    assert list(comparison.results) == [backend_name] and comparison.interrupted
    assert comparison.skipped == {others[0]: "interrupted",
                                  others[1]: "not started (interrupted)"}
    assert comparison.results[backend_name].perplexities[-1] > 0
    assert f"{others[0]}: interrupted; the 1 backend(s) that finished are returned" in (
        capsys.readouterr().out)
    assert f"| {others[0]} | skipped: interrupted |" in comparison.summary()
    with pytest.raises(KeyboardInterrupt):          # nothing finished: nothing to return
        api.compare(others, num_epochs=1, verbose=False)
