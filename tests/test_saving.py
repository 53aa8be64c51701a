"""Saving never destroys anything (issue 14, A): the outputs are checked before the first epoch,
a save that fails later is one clear line that keeps the last good checkpoint, checkpoints get
the user's file mode, and ``--resume`` works from any folder. Through the command line."""
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

from rnn_core import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--hidden", "16", "--lr", "1", "--clip", "1", "--pred-len", "4"]


def run(*args, cwd=ROOT, faults=None, umask=None, module="rnn_core.run", as_user=False):
    """``python -m MODULE ARGS`` (with ``tests/faults.py`` FAULTS injected, if given; with
    file permissions applied even to root, if ``as_user``)."""
    launcher = ([os.path.join(ROOT, "tests", "faults.py"), faults] if faults is not None
                else ["-m"])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    return subprocess.run([*(unprivileged() if as_user else []), sys.executable, *launcher,
                           module, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, stdin=subprocess.DEVNULL, env=environment,
                          preexec_fn=(lambda: os.umask(umask)) if umask else None)


def unprivileged():
    """The command prefix under which file permissions apply: nothing for a user; for root,
    whom they do not bind, ``setpriv --bounding-set=-all``, which drops root's capabilities
    (it stays the owner of its files, so Python and the repository are still readable)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("file permissions do not bind root, and setpriv is not here to drop that")
    return ["setpriv", "--bounding-set=-all"]


@pytest.fixture
def chmod():
    """``chmod(path, mode)``, undone after the test (so that the folder can be removed)."""
    changed = []

    def change(path, mode):
        changed.append((path, stat.S_IMODE(os.stat(path).st_mode)))
        os.chmod(path, mode)
    yield change
    for path, mode in reversed(changed):
        os.chmod(path, mode)


def one_clear_line(result, *fragments):
    """Exit status 2, one line on stderr holding every fragment, no traceback, no training."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def files(folder):
    """Every name in ``folder`` and below (temporary files included), relative to it."""
    return sorted(os.path.relpath(os.path.join(top, name), folder)
                  for top, dirs, names in os.walk(folder) for name in dirs + names)


@pytest.fixture
def trained(tmp_path_factory):
    """A checkpoint of two epochs, and a copy of its bytes."""
    path = tmp_path_factory.mktemp("trained") / "ck.npz"
    result = run(*SMALL, "--epochs", "2", "--save", str(path))
    assert result.returncode == 0, result.stderr
    return path


@pytest.mark.parametrize("case", ["existing text file", "folder", "named pipe",
                                  "link to a named pipe", "corpus",
                                  "plot over the save", "plot over the resumed checkpoint",
                                  "link loop", "path through a file", "empty name",
                                  "new folder with a slash", "plot in a new folder"])
def test_an_output_that_would_destroy_something_is_refused_before_training(tmp_path, trained,
                                                                          case):
    notes = tmp_path / "notes.txt"
    notes.write_text("my own notes, not a checkpoint\n" * 200, encoding="utf-8")
    (tmp_path / "folder").mkdir()
    os.symlink("loop", tmp_path / "loop")
    os.mkfifo(tmp_path / "pipe")    # a special file (a device is one too, but a test that
    os.symlink("pipe", tmp_path / "link.png")    # fails must not replace /dev/null)
    args, fragment = {
        "existing text file": (["--save", str(notes)], "is not an rnn-core checkpoint"),
        "folder": (["--save", str(tmp_path / "folder")], "is a folder"),
        "named pipe": (["--save", str(tmp_path / "pipe")], "is a named pipe"),
        "link to a named pipe": (["--plot", str(tmp_path / "link.png")], "is a named pipe"),
        "corpus": (["--corpus", str(notes), "--plot", str(notes.with_suffix(".png")),
                    "--save", str(notes)], "--save and --corpus name the same file"),
        "plot over the save": (["--save", str(tmp_path / "a.npz"), "--plot",
                                str(tmp_path / "a.npz")], "name the same file"),
        "plot over the resumed checkpoint": (["--resume", str(trained), "--epochs", "3",
                                              "--plot", str(trained)], "name the same file"),
        "link loop": (["--save", str(tmp_path / "loop")], "loops back"),
        "path through a file": (["--save", str(notes / "ck.npz")], "is a file, not a folder"),
        "empty name": (["--save", ""], "--save is empty"),
        "new folder with a slash": (["--save", f"{tmp_path / 'new'}/"], "names a folder"),
        "plot in a new folder": (["--plot", f"{tmp_path / 'plots'}/"], "names a folder"),
    }[case]
    before = {path: path.read_bytes() for path in (notes, trained)}
    listing = files(tmp_path)
    result = run(*SMALL, "--epochs", "2", *args)
    one_clear_line(result, fragment)
    assert "epoch" not in result.stdout                 # refused before training, not after
    assert {path: path.read_bytes() for path in before} == before
    assert files(tmp_path) == listing
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)


def test_the_corpus_itself_cannot_be_an_output(tmp_path):
    corpus = tmp_path / "text.txt"
    shutil.copy(os.path.join(ROOT, "data", "lyrics_zh.txt"), corpus)
    os.symlink(corpus, tmp_path / "curve.png")          # --plot through a link to the corpus
    result = run(*SMALL, "--epochs", "1", "--corpus", str(corpus), "--plot",
                 str(tmp_path / "curve.png"))
    one_clear_line(result, "--plot and --corpus name the same file")
    assert corpus.read_bytes() == open(os.path.join(ROOT, "data", "lyrics_zh.txt"), "rb").read()


def test_a_missing_folder_is_made_and_a_link_is_written_through(tmp_path):
    target = tmp_path / "kept" / "model.npz"
    target.parent.mkdir()
    os.symlink(target, tmp_path / "link.npz")
    result = run(*SMALL, "--epochs", "1", "--save", str(tmp_path / "link.npz"), "--plot",
                 str(tmp_path / "new" / "folder" / "curve"))
    assert result.returncode == 0, result.stderr
    assert os.path.islink(tmp_path / "link.npz")       # the link stays, its target is written
    assert checkpoint.load(target).epoch == 1
    with open(tmp_path / "new" / "folder" / "curve", "rb") as image:   # exactly the name given
        assert image.read(8) == b"\x89PNG\r\n\x1a\n"
    assert files(tmp_path) == ["kept", "kept/model.npz", "link.npz", "new", "new/folder",
                               "new/folder/curve"]


def test_a_folder_without_permission_is_refused_before_training(tmp_path, chmod):
    locked = tmp_path / "locked"
    locked.mkdir()
    chmod(locked, 0o555)
    result = run(*SMALL, "--epochs", "1", "--save", str(locked / "ck.npz"), as_user=True)
    one_clear_line(result, f"--save {locked / 'ck.npz'}", "Permission denied",
                   "make the folder writable")
    assert "epoch" not in result.stdout and os.listdir(locked) == []


def test_a_disk_too_full_for_the_outputs_is_refused_before_training(tmp_path):
    result = run(*SMALL, "--epochs", "1", "--save", str(tmp_path / "ck.npz"),
                 faults="free-bytes=65536")                   # a checkpoint of 149 kB
    one_clear_line(result, f"--save {tmp_path / 'ck.npz'}", "about 155.7 kB does not fit",
                   "65.5 kB free", "free some space on that disk")
    result = run(*SMALL, "--epochs", "1", "--plot", str(tmp_path / "curve.png"),
                 faults="free-bytes=1000")
    one_clear_line(result, "--plot", "does not fit")
    assert files(tmp_path) == []


def test_a_disk_with_room_for_one_checkpoint_but_not_two_is_refused_before_training(tmp_path):
    """A checkpoint saved every epoch is written beside the last before that one goes: the
    second save needs room for two (the first run would have stopped at epoch 2)."""
    result = run(*SMALL, "--epochs", "3", "--pred-period", "1", "--save",
                 str(tmp_path / "ck.npz"), faults="free-bytes=200000")   # 156 kB each
    one_clear_line(result, f"--save {tmp_path / 'ck.npz'}", "about 155.7 kB (311.4 kB while a "
                   "save replaces the last one) does not fit", "200.0 kB free")
    assert "epoch" not in result.stdout and files(tmp_path) == []
    result = run(*SMALL, "--epochs", "1", "--save", str(tmp_path / "ck.npz"),
                 faults="free-bytes=200000")                        # one save: it fits
    assert result.returncode == 0, result.stderr


def test_a_save_that_fails_later_keeps_the_last_good_checkpoint(tmp_path, backend_name):
    """Epochs 1 and 2 are saved; the disk is full when epoch 3 is."""
    path = tmp_path / "ck.npz"
    result = run(*SMALL, "--backend", backend_name, "--epochs", "4", "--pred-period", "1",
                 "--save", str(path), faults="enospc-after=2")
    line = one_clear_line(result, f"could not write the checkpoint {path}",
                          "No space left on device", "free some space",
                          "The file already there is left as it was")
    assert "Traceback" not in result.stderr and line
    assert "epoch 3" in result.stdout                   # it failed at epoch 3's save
    assert checkpoint.load(path).epoch == 2
    assert files(tmp_path) == ["ck.npz"]                # no temporary file left


def test_a_save_on_ctrl_c_that_fails_is_one_clear_line(tmp_path, trained, backend_name):
    path = tmp_path / "ck.npz"
    shutil.copy(trained, path)
    before = path.read_bytes()
    result = run("--resume", str(path), "--backend", backend_name, "--epochs", "100",
                 "--pred-period", "50", "--save", str(path),
                 faults="enospc-after=0;interrupt-at-epoch=5")
    one_clear_line(result, f"could not write the checkpoint {path}", "No space left on device")
    assert path.read_bytes() == before and files(tmp_path) == ["ck.npz"]


def test_ctrl_c_before_the_first_epoch_says_nothing_was_saved(tmp_path):
    result = run(*SMALL, "--epochs", "5", "--save", str(tmp_path / "ck.npz"),
                 faults="interrupt-at-epoch=1")
    assert result.returncode == 130 and result.stderr.strip() == "interrupted"
    assert "before it completed: nothing to save" in result.stdout
    assert files(tmp_path) == []


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_checkpoint_and_a_plot_get_the_users_file_mode(tmp_path, umask, mode):
    result = run(*SMALL, "--epochs", "1", "--save", str(tmp_path / "ck.npz"), "--plot",
                 str(tmp_path / "curve.png"), umask=umask)
    assert result.returncode == 0, result.stderr
    for name in ("ck.npz", "curve.png"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == mode, name


def test_a_replaced_checkpoint_keeps_its_mode(tmp_path, trained):
    path = tmp_path / "ck.npz"
    shutil.copy(trained, path)
    os.chmod(path, 0o640)
    result = run("--resume", str(path), "--epochs", "3", "--save", str(path))
    assert result.returncode == 0, result.stderr
    assert checkpoint.load(path).epoch == 3
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_checkpoint_that_has_trained_enough_epochs_is_one_clear_line(trained):
    result = run("--resume", str(trained), "--epochs", "2")
    one_clear_line(result, "the checkpoint has already trained 2 epochs: give --epochs above 2")


def test_resume_works_from_any_folder(tmp_path):
    """A checkpoint of a user's corpus, given by a relative path, resumes from another folder;
    a corpus that has moved is named with --corpus."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir(), elsewhere.mkdir()
    shutil.copy(os.path.join(ROOT, "data", "lyrics_zh.txt"), here / "mine.txt")
    first = run(*SMALL, "--epochs", "1", "--corpus", "mine.txt", "--save", "ck.npz", cwd=here)
    assert first.returncode == 0, first.stderr
    assert checkpoint.load(here / "ck.npz").corpus == str(here / "mine.txt")
    resumed = run("--resume", str(here / "ck.npz"), "--epochs", "2", cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[1].startswith("epoch 2, perplexity")
    trained_enough = run("--resume", str(here / "ck.npz"), "--epochs", "1", cwd=elsewhere)
    one_clear_line(trained_enough, "the checkpoint has already trained 1 epoch: give --epochs "
                   "above 1 to train further")
    os.rename(here / "mine.txt", elsewhere / "moved.txt")
    lost = run("--resume", str(here / "ck.npz"), "--epochs", "2", cwd=elsewhere)
    one_clear_line(lost, "mine.txt", "give --corpus PATH to say where that text is now")
    (elsewhere / "other.txt").write_text("another text, other letters " * 300)
    other = run("--resume", str(here / "ck.npz"), "--epochs", "2", "--corpus", "other.txt",
                cwd=elsewhere)
    one_clear_line(other, "the checkpoint was written for another vocabulary")
    found = run("--resume", str(here / "ck.npz"), "--epochs", "2", "--corpus", "moved.txt",
                cwd=elsewhere)
    assert found.returncode == 0, found.stderr
    assert numbers(found.stdout) == numbers(resumed.stdout)


def numbers(stdout):
    return [re.sub(r"time \S+ sec", "", line) for line in stdout.splitlines()[1:]]
