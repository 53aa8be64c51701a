"""Checkpoints: exact resumption, any backend loads any checkpoint, damage is refused."""
import json
import os
import re
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from rnn_core import api, checkpoint, cli, data, generate, get_backend, model, outputs, train
from rnn_core.concise import ConciseRNN
from rnn_core.data import load_corpus
from rnn_core.backend import REFERENCE, has
from rnn_core.predict import predict_rnn

from conftest import deterministic, device_for, reference_ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def small(**changes):
    return train.TrainConfig(**{"num_hiddens": 24, "num_epochs": 4, "pred_period": 2,
                                "lr": 1.0, "clipping_theta": 1.0, **changes})


@pytest.mark.parametrize("sampling", ["random", "consecutive"])
def test_resuming_gives_the_numbers_of_an_uninterrupted_run(ops, corpus, tmp_path, sampling):
    ops = deterministic(ops)
    config = small(sampling=sampling)
    whole_params, whole = train.train_and_predict_rnn(ops, corpus, config, log=lambda _: None)
    path = tmp_path / "half.npz"
    train.train_and_predict_rnn(ops, corpus, small(sampling=sampling, num_epochs=2),
                                log=lambda _: None, save=path)
    saved = checkpoint.load(path)
    assert saved.epoch == 2 and len(saved.history) == 2
    params, rest = train.train_and_predict_rnn(ops, corpus, config, log=lambda _: None,
                                               resume=saved)
    assert [r.epoch for r in rest] == [3, 4]
    for a, b in zip(whole[2:], rest):
        np.testing.assert_array_equal(a.batch_losses, b.batch_losses)
    for a, b in zip(model.params_to_numpy(ops, whole_params), model.params_to_numpy(ops, params)):
        np.testing.assert_array_equal(a, b)


def test_adam_state_survives_a_checkpoint(autograd_ops, corpus, tmp_path):
    autograd_ops = deterministic(autograd_ops)
    config = small(model="concise", optimizer="adam", lr=1e-2, init="uniform",
                   sampling="consecutive")
    _, whole = train.train_and_predict_rnn(autograd_ops, corpus, config, log=lambda _: None)
    path = tmp_path / "adam.npz"
    train.train_and_predict_rnn(autograd_ops, corpus, small(**{**config.__dict__, "num_epochs": 2}),
                                log=lambda _: None, save=path)
    _, rest = train.train_and_predict_rnn(autograd_ops, corpus, config, log=lambda _: None,
                                          resume=checkpoint.load(path))
    for a, b in zip(whole[2:], rest):
        np.testing.assert_array_equal(a.batch_losses, b.batch_losses)


def test_ctrl_c_during_an_epoch_saves_the_last_completed_one(ops, corpus, tmp_path, monkeypatch):
    """While an epoch runs, the trainer keeps the weights and optimiser state of the last completed
    one for the Ctrl-C checkpoint: a compiled step must leave them readable (a framework that
    recycles its inputs' buffers, such as JAX with donated arguments, would delete them)."""
    ops = deterministic(ops)
    config = small(optimizer="adam", lr=1e-2, pred_period=0)
    _, whole = train.train_and_predict_rnn(ops, corpus, config, log=lambda _: None)
    epochs, real = [], train.data_iter

    def interrupted_in_epoch_3(config, corpus_indices, rng):   # after two steps of epoch 3
        epochs.append(1)
        for k, batch in enumerate(real(config, corpus_indices, rng)):
            if len(epochs) == 3 and k == 2:
                raise KeyboardInterrupt
            yield batch
    monkeypatch.setattr(train, "data_iter", interrupted_in_epoch_3)
    path = tmp_path / "ck.npz"
    with pytest.raises(KeyboardInterrupt):
        train.train_and_predict_rnn(ops, corpus, config, log=lambda _: None, save=path)
    monkeypatch.setattr(train, "data_iter", real)
    saved = checkpoint.load(path)
    assert saved.epoch == 2
    _, rest = train.train_and_predict_rnn(ops, corpus, config, log=lambda _: None, resume=saved)
    for a, b in zip(whole[2:], rest):
        np.testing.assert_array_equal(a.batch_losses, b.batch_losses)


@pytest.mark.parametrize("kind", ["scratch", "concise"])
def test_a_model_trained_on_one_backend_loads_on_every_other(ops, all_ops, corpus, tmp_path,
                                                            kind):
    """Trained on ``ops``, loaded on every selected backend and the NumPy reference."""
    trainer = ops
    if kind == "concise" and not has(ops.name, "layers"):
        pytest.skip(f"{ops.name} has no RNN layer to train the concise model")
    path = tmp_path / f"{kind}.npz"
    config = small(model=kind, num_epochs=2)
    train.train_and_predict_rnn(trainer, corpus, config, log=lambda _: None, save=path)
    saved = checkpoint.load(path)
    X = np.array([corpus.vocab.encode("分开我们不分开")])
    results = {}
    for ops in all_ops:
        P = model.params_to_backend(ops, saved.params)
        state = model.init_rnn_state(ops, 1, 24)
        if kind == "concise" and has(ops.name, "layers"):
            forward = ConciseRNN(ops, corpus.vocab.vocab_size, 24).forward
        else:   # NumPy has no RNN layer: the scratch model computes the same function
            forward = train.make_forward(ops, corpus.vocab.vocab_size, small())
        O, _ = forward(ops.asarray(X), state, P)
        results[ops.name] = (ops.to_numpy(O),
                             predict_rnn(ops, "不分开", 20, P, corpus.vocab, forward=forward))
    logits, text = results[REFERENCE]
    for name, (O, generated) in results.items():
        np.testing.assert_allclose(O, logits, rtol=1e-4, atol=1e-5, err_msg=name)
        assert generated == text, name


def test_a_truncated_or_edited_checkpoint_is_refused(corpus, tmp_path):
    ops = get_backend("numpy")
    path = tmp_path / "good.npz"
    train.train_and_predict_rnn(ops, corpus, small(num_epochs=2), log=lambda _: None, save=path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="not a readable"):
        checkpoint.load(tmp_path / "cut.npz")
    with zipfile.ZipFile(path) as archive:            # same record, one weight changed
        members = {name: archive.read(name) for name in archive.namelist()}
    with np.load(path) as arrays:
        W = arrays["params/b_q"].copy()
    W[0] += 1.0
    import io
    buffer = io.BytesIO()
    np.save(buffer, W)
    members["params/b_q.npy"] = buffer.getvalue()
    with zipfile.ZipFile(tmp_path / "edited.npz", "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(checkpoint.CheckpointError, match="checksum"):
        checkpoint.load(tmp_path / "edited.npz")
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "missing.npz")


def rewritten(path, tmp_path, change):
    """A copy of the checkpoint at ``path`` whose record ``change`` edits, with its checksum
    made again: a file that passes the checksum but holds another shape of record."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    record = json.loads(bytes(arrays.pop("record.json")).decode("utf-8"))
    record.pop("sha256")
    record = change(record)
    if isinstance(record, dict):
        record["sha256"] = checkpoint._checksum(arrays, record)
    out = tmp_path / "rewritten.npz"
    np.savez(out, **arrays, **{"record.json": np.frombuffer(json.dumps(record).encode(), np.uint8)})
    return out


@pytest.mark.parametrize("change", [lambda r: [1, 2], lambda r: {**r, "epoch": "2"},
                                    lambda r: {k: v for k, v in r.items() if k != "rng_state"},
                                    lambda r: {**r, "config": None}],
                         ids=["a list", "a text epoch", "no rng state", "no config"])
def test_a_checkpoint_whose_record_has_another_shape_is_refused(corpus, tmp_path, change):
    path = tmp_path / "good.npz"
    train.train_and_predict_rnn(reference_ops(), corpus, small(num_epochs=1), log=lambda _: None,
                                save=path)
    with pytest.raises(checkpoint.CheckpointError, match="not an rnn-core checkpoint|cannot read"):
        checkpoint.load(rewritten(path, tmp_path, change))


def test_a_checkpoint_for_another_vocabulary_is_refused(corpus, tmp_path):
    ops = get_backend("numpy")
    path = tmp_path / "ck.npz"
    train.train_and_predict_rnn(ops, corpus, small(num_epochs=2), log=lambda _: None, save=path)
    other = tmp_path / "other.txt"
    other.write_text("别的字 " * 2000, encoding="utf-8")
    with pytest.raises(checkpoint.CheckpointError, match="another vocabulary"):
        train.train_and_predict_rnn(ops, load_corpus(other), small(), log=lambda _: None,
                                    resume=checkpoint.load(path))


def test_a_corpus_file_edited_since_the_checkpoint_is_named_as_changed(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("分开 不分开 我 你 他 \n" * 300, encoding="utf-8")
    path = tmp_path / "ck.npz"
    train.train_and_predict_rnn(reference_ops(), load_corpus(text), small(num_epochs=1),
                                log=lambda _: None, save=path)
    with open(text, "a", encoding="utf-8") as f:
        f.write("新字\n")
    with pytest.raises(checkpoint.CheckpointError, match=(
            f"^the corpus {text} has changed since the checkpoint was written: its vocabulary is "
            f"now 9 characters, the checkpoint's 7: resume with the text as it was, or train "
            f"again without --resume$")):
        train.train_and_predict_rnn(reference_ops(), load_corpus(text), small(),
                                    log=lambda _: None, resume=checkpoint.load(path))


def test_a_checkpoint_whose_weights_are_inf_or_nan_is_refused(corpus, tmp_path):
    """Saved by a version that did not check, or written by hand: generating from it would print
    blanks, and resuming would fail at once."""
    path = tmp_path / "ck.npz"
    train.train_and_predict_rnn(reference_ops(), corpus, small(num_epochs=1), log=lambda _: None,
                                save=path)
    saved = checkpoint.load(path)
    saved.params = saved.params._replace(W_hh=np.full_like(saved.params.W_hh, np.nan))
    checkpoint.save(path, saved)
    with pytest.raises(checkpoint.CheckpointError, match=(
            "holds weights that are inf or NaN \\(saved by a run that diverged\\): train again, "
            "with a lower --lr or --clip$")):
        checkpoint.load(path)


def test_a_checkpoint_without_cell_variant_and_layers_is_a_one_layer_rnn(corpus, tmp_path):
    """A record whose config has no ``cell``, ``variant`` and ``num_layers`` (written before the
    GRU, the LSTM and deep models) holds a one-layer RNN, as the module says: it loads as
    ``RNNParams``, with its weights."""
    path = tmp_path / "good.npz"
    trained, _ = train.train_and_predict_rnn(reference_ops(), corpus, small(num_epochs=1),
                                             log=lambda _: None, save=path)
    older = lambda r: {**r, "config": {k: v for k, v in r["config"].items()    # noqa: E731
                                       if k not in ("cell", "variant", "num_layers")}}
    saved = checkpoint.load(rewritten(path, tmp_path, older))
    assert "cell" not in saved.config and type(saved.params) is model.RNNParams
    for got, want in zip(saved.params, model.params_to_numpy(reference_ops(), trained)):
        np.testing.assert_array_equal(got, want)


def test_resuming_needs_the_same_characters_in_the_same_order_and_hidden_size(corpus, tmp_path):
    """A checkpoint's weights have a row (``W_xh``) and a column (``W_hq``) per character, in its
    vocabulary's order: the same characters in another order (two swapped, as the first edition's
    ``list(set(...))`` gives in another process) are another vocabulary; and a hidden size other
    than the checkpoint's is refused, naming both."""
    path = tmp_path / "ck.npz"
    train.train_and_predict_rnn(reference_ops(), corpus, small(num_epochs=1), log=lambda _: None,
                                save=path)
    saved = checkpoint.load(path)
    checkpoint.check_compatible(saved, corpus.vocab.idx_to_char, 24)
    checkpoint.check_compatible(saved, corpus.vocab.idx_to_char)      # no hidden size to check
    swapped = list(corpus.vocab.idx_to_char)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(checkpoint.CheckpointError, match="another vocabulary"):
        checkpoint.check_compatible(saved, swapped, 24)
    with pytest.raises(checkpoint.CheckpointError, match="hidden size 24, not 32"):
        train.train_and_predict_rnn(reference_ops(), corpus, small(num_hiddens=32),
                                    log=lambda _: None, resume=saved)


def test_an_array_stored_in_another_shape_fails_the_checksum(corpus, tmp_path):
    """The checksum covers each array's shape, not only its bytes: an Adam moment or a weight
    stored with the same bytes as one row is damage, and refused as such (a moment has no other
    check: it would load, and fail or mislead later)."""
    path = tmp_path / "adam.npz"
    train.train_and_predict_rnn(reference_ops(), corpus,
                                small(num_epochs=1, optimizer="adam", lr=1e-2),
                                log=lambda _: None, save=path)
    for name in ("opt/1/0", "params/b_q"):                  # Adam's m of W_xh; the output bias
        with np.load(path) as archive:
            arrays = {member: archive[member] for member in archive.files}
        arrays[name] = arrays[name].reshape(1, -1)
        np.savez(tmp_path / "reshaped.npz", **arrays)
        with pytest.raises(checkpoint.CheckpointError, match="fails its checksum"):
            checkpoint.load(tmp_path / "reshaped.npz")


@pytest.mark.parametrize("cell,num_layers", [("rnn", 1), ("lstm", 4)])
@pytest.mark.parametrize("optimizer,lr", [("sgd", 1.0), ("adam", 1e-2)])
def test_the_estimated_size_covers_the_file_save_writes(corpus, tmp_path, optimizer, lr, cell,
                                                        num_layers):
    """``run`` refuses a ``--save`` the disk has no room for by ``estimated_size``, before
    training: it must be at least the size of the file (the weights, and Adam's two moments as
    large again each, every array's headers, the record) and not much more (15 KB above for the
    record, 400 bytes an array for the headers: a 4-layer LSTM with Adam writes 148 arrays, and
    its file was 31 KB above an estimate of the weights and a fixed 8 KB)."""
    path = tmp_path / "ck.npz"
    train.train_and_predict_rnn(reference_ops(), corpus,
                                small(num_epochs=2, optimizer=optimizer, lr=lr, cell=cell,
                                      num_layers=num_layers),
                                log=lambda _: None, save=path)
    shapes = [p.shape for p in checkpoint.load(path).params]
    size = path.stat().st_size
    estimate = checkpoint.estimated_size(shapes, corpus.vocab.vocab_size, optimizer, 2)
    num_arrays = len(shapes) * (3 if optimizer == "adam" else 1)
    assert size <= estimate <= size + 15_000 + 400 * num_arrays, (size, estimate)


def test_a_vocabulary_with_unk_keeps_it_through_a_checkpoint(tmp_path, monkeypatch, capsys):
    """The second edition's vocabularies reserve ``<unk>`` (index 0) for characters the corpus
    lacks: a checkpoint records that it has one, so the model it holds reads an unseen character
    of a prefix as ``<unk>``, as the corpus's own vocabulary does, instead of refusing it: in
    ``api.generate`` and in ``python -m rnn_core.generate`` (its ``main``, run here)."""
    (tmp_path / "toy.txt").write_text("The Time Traveller, for so it will be convenient to "
                                      "speak of him.\n" * 60, encoding="utf-8")
    monkeypatch.setenv("RNN_CORE_DATA", str(tmp_path))
    monkeypatch.setitem(data.NAMED_CORPORA, "toy", data.NamedCorpus("toy.txt", "letters",
                                                                    unk=True))
    toy = load_corpus("toy")
    assert "q" not in toy.vocab.char_to_idx
    path = tmp_path / "ck.npz"
    trained, _ = train.train_and_predict_rnn(reference_ops(), toy, small(num_epochs=1),
                                             log=lambda _: None, save=path)
    saved = checkpoint.load(path)
    assert saved.unk is True and saved.idx_to_char[0] == data.UNK
    text = predict_rnn(reference_ops(), "the q", 8, trained, toy.vocab)
    assert text.startswith("the " + data.UNK) and api.generate(path, "the q", 8) == text
    assert generate.main(["--checkpoint", str(path), "--prefix", "the q", "--num-chars", "8"]) == 0
    assert capsys.readouterr().out == text + "\n"


def test_an_interrupted_write_keeps_the_last_good_checkpoint(corpus, tmp_path, monkeypatch):
    ops = get_backend("numpy")
    path = tmp_path / "ck.npz"
    train.train_and_predict_rnn(ops, corpus, small(num_epochs=2), log=lambda _: None, save=path)
    before = path.read_bytes()

    def power_cut(descriptor):
        raise OSError("disk full")
    monkeypatch.setattr(checkpoint.os, "fsync", power_cut)
    with pytest.raises(OSError, match="disk full"):
        train.train_and_predict_rnn(ops, corpus, small(), log=lambda _: None,
                                    resume=checkpoint.load(path), save=path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_a_signal_during_a_save_leaves_no_archive_open(corpus, tmp_path, monkeypatch):
    """SIGTERM can arrive while a checkpoint's archive is being built in memory. The archive is
    closed on the way out: left open, Python finalises it at exit, maybe after its buffer, and
    prints a traceback under "stopped by SIGTERM" (CI saw it once, with torch)."""
    path = tmp_path / "ck.npz"
    train.train_and_predict_rnn(get_backend(REFERENCE), corpus, small(num_epochs=2),
                                log=lambda _: None, save=path)
    saved, before = checkpoint.load(path), path.read_bytes()
    archives = []

    class SignalledAfterOneMember(zipfile.ZipFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            archives.append(self)

        def open(self, name, mode="r", **kwargs):
            if mode == "w" and self.namelist():
                raise cli.Terminated(signal.SIGTERM)
            return super().open(name, mode, **kwargs)
    monkeypatch.setattr(zipfile, "ZipFile", SignalledAfterOneMember)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, saved)
    assert archives and [archive.fp for archive in archives] == [None] * len(archives)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ck.npz"]


@pytest.mark.parametrize("made", ["the checkpoint's temporary copy", "the folder's probe"])
def test_a_signal_just_after_a_temporary_file_is_made_leaves_no_file(corpus, tmp_path,
                                                                     monkeypatch, made):
    """SIGTERM can come in as soon as ``open`` has made the file, before its name is kept: the
    file is removed all the same (CI once found the checkpoint's left behind)."""
    path = tmp_path / "ck.npz"
    train.train_and_predict_rnn(get_backend(REFERENCE), corpus, small(num_epochs=2),
                                log=lambda _: None, save=path)
    saved, before = checkpoint.load(path), path.read_bytes()
    real_open, suffix = os.open, {"the checkpoint's temporary copy": ".tmp"}.get(made, ".probe")

    def open_then_signal(file, flags, *args, **kwargs):
        descriptor = real_open(file, flags, *args, **kwargs)
        if str(file).endswith(suffix):
            raise cli.Terminated(signal.SIGTERM)
        return descriptor
    monkeypatch.setattr(os, "open", open_then_signal)
    with pytest.raises(KeyboardInterrupt):
        if suffix == ".tmp":
            checkpoint.save(path, saved)
        else:
            outputs.check_output(path, "--save", "checkpoint", 1000)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ck.npz"]


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "rnn_core.run", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600, stdin=subprocess.DEVNULL, **kwargs)


def numbers(stdout):
    return [re.sub(r"time \S+ sec", "", line) for line in stdout.splitlines()
            if line.startswith(("epoch", " - "))]


def test_save_and_resume_through_the_command_line(tmp_path, selected):
    """Trained on the NumPy reference, resumed on the last selected backend."""
    common = ["--hidden", "24", "--pred-period", "1", "--pred-len", "8", "--lr", "1", "--clip", "1"]
    whole = run_cli(*common, "--epochs", "4")
    first = run_cli(*common, "--epochs", "2", "--save", str(tmp_path / "ck.npz"))
    rest = run_cli("--resume", str(tmp_path / "ck.npz"), "--epochs", "4", "--backend", selected[-1])
    assert whole.returncode == first.returncode == rest.returncode == 0, rest.stderr
    assert numbers(first.stdout) + numbers(rest.stdout) == numbers(whole.stdout)
    refused = run_cli("--resume", str(tmp_path / "ck.npz"), "--epochs", "4", "--lr", "3")
    assert refused.returncode == 2 and "--lr 3.0 contradicts the checkpoint" in refused.stderr


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_path):
    """A real SIGINT to a real training process, after its second epoch."""
    common = ["--hidden", "24", "--pred-period", "1", "--pred-len", "4", "--lr", "1", "--clip", "1"]
    whole = run_cli(*common, "--epochs", "5")
    path = tmp_path / "ck.npz"
    process = subprocess.Popen([sys.executable, "-u", "-m", "rnn_core.run", *common, "--epochs",
                                "100000", "--save", str(path)], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL)
    lines = []
    while len([line for line in lines if line.startswith("epoch")]) < 2:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        lines.append(line)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "saved epoch" in out and "Traceback" not in err
    saved = checkpoint.load(path)
    assert saved.epoch >= 2
    rest = run_cli("--resume", str(path), "--epochs", "5")
    assert rest.returncode == 0, rest.stderr
    kept = [line for line in numbers("".join(lines) + out) if line.startswith("epoch")]
    assert numbers(rest.stdout) == numbers(whole.stdout)[3 * saved.epoch:]
    assert kept[:saved.epoch] == [l for l in numbers(whole.stdout) if l.startswith("epoch")][:saved.epoch]
