"""Bad input: one clear line that names the value and the fix, exit status 2, no traceback,
and nothing lost."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from rnn_core import checkpoint, get_backend, model, train
from rnn_core.backend import BACKEND_NAMES, REFERENCE, has
from rnn_core.data import load_corpus
from rnn_core.errors import TrainingDiverged

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "rnn_core.run", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, stdin=subprocess.DEVNULL)


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members:
            archive.writestr(name, content)


BAD_FILES = {
    "empty.txt": lambda p: p.write_bytes(b""),
    "short.txt": lambda p: p.write_text("分开 不分开 " * 10, encoding="utf-8"),
    "latin1.txt": lambda p: p.write_bytes("café ".encode("latin-1") * 500),
    "none.zip": lambda p: make_zip(p, []),
    "two.zip": lambda p: make_zip(p, [("a.txt", "x"), ("b.txt", "y")]),
    "corrupt.zip": lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 40),
}


@pytest.mark.parametrize("args,message", [
    (["--prefixes", "分开", "xyz"], "'xyz' has characters the vocabulary has never seen: 'x', 'y', 'z'"),
    (["--prefixes", ""], "--prefixes '' is empty"),
    (["--pred-len", "0"], "--pred-len: must be a positive integer, got '0'"),
    (["--pred-len", "-3"], "--pred-len: must be a positive integer, got '-3'"),
    (["--epochs", "0"], "--epochs: must be a positive integer, got '0'"),
    (["--epochs", "-1"], "--epochs: must be a positive integer, got '-1'"),
    (["--batch-size", "0"], "--batch-size: must be a positive integer, got '0'"),
    (["--num-steps", "-5"], "--num-steps: must be a positive integer, got '-5'"),
    (["--num-steps", "100000"], "too short for one batch"),     # before "needs 62 GB of memory"
    (["--hidden", "0"], "--hidden: must be a positive integer, got '0'"),
    (["--hidden", "many"], "--hidden: must be an integer, got 'many'"),
    (["--lr", "0"], "--lr: must be a positive number, got '0'"),
    (["--lr", "-0.1"], "--lr: must be a positive number, got '-0.1'"),
    (["--clip", "nan"], "--clip: must be a positive number, got 'nan'"),
    (["--backend", "caffe"], "unknown backend 'caffe': choose one of numpy, torch, tf, mxnet, jax"),
    (["--backend", "numpy", "--device", "gpu"], "--device gpu: the numpy backend runs on the CPU "
     "only; use --device cpu or --device auto, or a backend with a GPU build: torch, tf, mxnet or jax"),
    (["--backend", "numpy", "--model", "concise"], "NumPy has no RNN layer"),
    (["--backend", "numpy", "--grad", "autograd"], "the numpy backend has no autograd"),
    (["--corpus", "missing.txt"], "corpus file 'missing.txt' does not exist"),
    (["--resume", "missing.npz"], "checkpoint 'missing.npz' does not exist"),
])
def test_a_bad_option_is_one_clear_line(args, message):
    result = run("--epochs", "1", *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name,message", [
    ("empty.txt", "has no text"),
    ("short.txt", "too short for one batch of random sampling with batch_size=32, num_steps=35"),
    ("latin1.txt", "is not UTF-8 text"),
    ("none.zip", "must hold exactly one text file, it holds 0"),
    ("two.zip", "must hold exactly one text file, it holds 2: a.txt, b.txt"),
    ("corrupt.zip", "is not a readable zip archive"),
])
def test_a_bad_corpus_file_is_one_clear_line(tmp_path, name, message):
    BAD_FILES[name](tmp_path / name)
    result = run("--epochs", "1", "--corpus", str(tmp_path / name))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_checkpoint_is_one_clear_line(tmp_path):
    good = tmp_path / "good.npz"
    assert run("--epochs", "1", "--hidden", "16", "--save", str(good)).returncode == 0
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:500])
    result = run("--resume", str(tmp_path / "cut.npz"), "--epochs", "2")
    assert result.returncode == 2 and "not a readable rnn-core checkpoint" in result.stderr
    assert "Traceback" not in result.stderr
    (tmp_path / "notes.txt").write_text("my notes\n", encoding="utf-8")   # NumPy: "pickled data?"
    result = run("--resume", str(tmp_path / "notes.txt"), "--epochs", "2")
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'notes.txt'} is not a readable rnn-core checkpoint (not a NumPy "
        "archive): it may be truncated or not a checkpoint; use another one or train again"]


def test_a_checkpoint_whose_weights_do_not_fit_its_vocabulary_is_refused(tmp_path):
    ops = get_backend("numpy")
    corpus = load_corpus()
    path = tmp_path / "ck.npz"
    train.train_and_predict_rnn(ops, corpus, train.TrainConfig(num_hiddens=16, num_epochs=1,
                                pred_period=0), log=lambda _: None, save=path)
    saved = checkpoint.load(path)
    saved.params = saved.params._replace(W_xh=saved.params.W_xh[:-1])   # one row short
    checkpoint.save(path, saved)
    with pytest.raises(checkpoint.CheckpointError, match="shapes"):
        checkpoint.load(path)


def test_a_loss_that_becomes_nan_keeps_the_last_good_checkpoint(tmp_path):
    ops = get_backend("numpy")
    corpus = load_corpus()
    path = tmp_path / "ck.npz"
    config = train.TrainConfig(num_hiddens=16, num_epochs=2, pred_period=1, lr=1, clipping_theta=1)
    train.train_and_predict_rnn(ops, corpus, config, log=lambda _: None, save=path)
    good = path.read_bytes()
    saved = checkpoint.load(path)
    poisoned = saved.params._replace(b_q=np.full_like(saved.params.b_q, np.inf))
    config.num_epochs = 4
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, batch 1"):
        train.train_and_predict_rnn(ops, corpus, config, log=lambda _: None, save=path,
                                    params=model.params_to_backend(ops, poisoned))
    assert path.read_bytes() == good


def test_a_loss_that_becomes_nan_later_saves_the_last_completed_epoch(tmp_path, monkeypatch):
    """Epochs 1 and 2 completed, and the checkpoint (saved every 50 epochs) had none of them:
    the error saves epoch 2 and says so. The code is the backend-neutral loop, so the reference
    backend checks it, as the interrupt tests do."""
    real = train.train_epoch

    def train_epoch(*args, **kwargs):      # train_epoch(ops, epoch_fn, ..., rng, epoch)
        if args[7] == 3:
            raise TrainingDiverged("the loss became nan at epoch 3, batch 1", "lower --lr")
        return real(*args, **kwargs)
    monkeypatch.setattr(train, "train_epoch", train_epoch)
    path = tmp_path / "ck.npz"
    config = train.TrainConfig(num_hiddens=16, num_epochs=5, pred_period=50)
    with pytest.raises(TrainingDiverged, match=r"^the loss became nan at epoch 3, batch 1: lower "
                                               r"--lr; epoch 2, the last before it, is saved in "):
        train.train_and_predict_rnn(get_backend(REFERENCE), load_corpus(), config,
                                    log=lambda _: None, save=path)
    assert checkpoint.load(path).epoch == 2


def test_weights_that_become_inf_in_the_last_epoch_fail_the_run_and_are_not_saved(tmp_path):
    """The loss of every batch is finite, but the update after the last one is not: the run
    fails in one line instead of saving (and printing text from) weights that are inf or NaN."""
    path = tmp_path / "ck.npz"
    result = run("--epochs", "1", "--lr", "1e308", "--hidden", "16", "--max-chars", "2000",
                 "--save", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [
        "error: the weights became inf or NaN in epoch 1: lower --lr (now 1e+308) or --clip "
        "(now 0.01)"]
    assert not path.exists()


def test_a_perplexity_that_overflows_is_divergence():
    """A mean loss above log(float max) (709 nats per character, where a uniform guess over the
    Jay Chou vocabulary costs 6.9) prints as perplexity inf: it is reported as divergence."""
    ops = get_backend(REFERENCE)
    config = train.TrainConfig(num_hiddens=8, lr=1e4)
    epoch_fn = lambda params, opt_state, batches: (params, opt_state,       # noqa: E731
                                                  np.full(len(batches), 800.0))
    with pytest.raises(TrainingDiverged, match=r"^the perplexity became inf at epoch 3 \(a mean "
                                               r"loss of 800 per character\): lower --lr \(now "
                                               r"10000.0\) or --clip \(now 0.01\)$"):
        train.train_epoch(ops, epoch_fn, None, None, config, load_corpus().corpus_indices,
                          train.random.Random(0), 3)


def test_a_resumed_run_that_diverges_says_to_lower_the_rate_in_a_new_run(tmp_path, monkeypatch):
    """A resumed run keeps its checkpoint's --lr and --clip (another is refused), so the advice
    names a new run."""
    path = tmp_path / "ck.npz"
    config = train.TrainConfig(num_hiddens=16, num_epochs=1, pred_period=50)
    train.train_and_predict_rnn(get_backend(REFERENCE), load_corpus(), config,
                                log=lambda _: None, save=path)
    real = train.train_epoch

    def train_epoch(*args, **kwargs):      # train_epoch(ops, epoch_fn, ..., rng, epoch)
        if args[7] == 3:
            raise TrainingDiverged("the loss became nan at epoch 3, batch 1",
                                   train.diverged_fix(args[4]))
        return real(*args, **kwargs)
    monkeypatch.setattr(train, "train_epoch", train_epoch)
    config.num_epochs = 5
    with pytest.raises(TrainingDiverged, match=r"^the loss became nan at epoch 3, batch 1: lower "
                                               r"--lr \(now 100.0\) or --clip \(now 0.01\) in a "
                                               r"new run \(without --resume: it keeps the "
                                               r"checkpoint's settings\); epoch 2, the last before "
                                               r"it, is saved in "):
        train.train_and_predict_rnn(get_backend(REFERENCE), load_corpus(), config,
                                    log=lambda _: None, save=path, resume=checkpoint.load(path))
    assert checkpoint.load(path).epoch == 2


def test_default_prefixes_cut_off_by_max_chars_ask_for_more_text_or_other_prefixes():
    result = run("--max-chars", "10", "--epochs", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: the corpus's default prefixes '分开', '不分开' are not all in the 10 characters "
        "kept for training (--max-chars 10): keep more (--max-chars 0 keeps all) or give "
        "--prefixes from the kept text, for example --prefixes 雨落在旧街的屋檐"]


def test_resuming_the_concise_model_without_an_rnn_layer_names_the_backends_with_one(tmp_path,
                                                                                    selected):
    layered = [name for name in selected if has(name, "layers")]
    bare = [name for name in selected if not has(name, "layers")]
    if not layered or not bare:
        pytest.skip("needs a selected backend with an RNN layer and one without")
    path = tmp_path / "ck.npz"
    trained = run("--backend", layered[0], "--model", "concise", "--epochs", "1", "--hidden",
                  "8", "--save", str(path), "--quiet")
    assert trained.returncode == 0, trained.stderr
    result = run("--resume", str(path), "--backend", bare[0], "--epochs", "2")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"error: {path} holds the concise model (a framework's own RNN layer), and the "
        f"{bare[0]} backend has none: resume it with --backend one of "
        f"{', '.join(n for n in BACKEND_NAMES if has(n, 'layers'))} (python -m "
        f"rnn_core.generate runs it on {bare[0]} as the scratch model, the same maths)"]


def test_nan_through_the_command_line_is_one_clear_line():
    result = run("--epochs", "3", "--hidden", "16", "--lr", "1e38", "--clip", "1e38")
    assert result.returncode == 2, result.stdout
    assert "the loss became" in result.stderr and "lower --lr" in result.stderr
    assert "Traceback" not in result.stderr
