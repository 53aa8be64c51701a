"""What is printed is what the user expects (issue 14, B): every run ends with its last epoch,
prefixes follow the corpus, options do what they say, every option's help gives its default,
no framework log lines, and compare and bench show a child's whole error and end their children.
Through the command line."""
import contextlib
import importlib
import os
import re
import signal
import subprocess
import sys
import time
import unicodedata

import pytest

from rnn_core import checkpoint, cli
from conftest import require_book_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--hidden", "16", "--lr", "1", "--clip", "1", "--pred-len", "6"]
TOOLS = ["rnn_core.run", "rnn_core.generate", "rnn_core.compare", "rnn_core.bench",
         "rnn_core.identity"]


def run(module, *args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def refused(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in line, line


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "model.npz"
    result = run("rnn_core.run", *SMALL, "--epochs", "2", "--quiet", "--save", str(path))
    assert result.returncode == 0, result.stderr
    return path


# ---- every run ends with its last epoch ---------------------------------------------------------
def test_every_run_ends_with_its_last_epochs_lines(backend_name):
    result = run("rnn_core.run", *SMALL, "--backend", backend_name, "--epochs", "3",
                 "--pred-period", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""                    # and no framework log lines
    lines = result.stdout.splitlines()
    assert [line.split(",")[0] for line in lines if line.startswith("epoch")] == ["epoch 2",
                                                                                  "epoch 3"]
    assert re.fullmatch(r"epoch 3, perplexity \d+\.\d\d, time \d+\.\d\d sec", lines[-3])
    assert lines[-2].startswith(" - 分开") and lines[-1].startswith(" - 不分开")


def test_a_run_shorter_than_the_pred_period_still_shows_its_result():
    """The teacher's `run --epochs 30` (pred_period 50) printed only the header."""
    result = run("rnn_core.run", *SMALL, "--epochs", "2")
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 4, result.stdout
    assert lines[1].startswith("epoch 2, perplexity") and lines[1].endswith(" sec")


def test_quiet_prints_the_last_epochs_line_in_full():
    result = run("rnn_core.run", *SMALL, "--epochs", "3", "--quiet")
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 3, result.stdout
    assert re.fullmatch(r"epoch 3, perplexity \d+\.\d\d, time \d+\.\d\d sec", lines[0])


# ---- prefixes follow the corpus ------------------------------------------------------------------
def test_the_time_machine_continues_time_traveller_by_default():
    require_book_corpus("timemachine")
    result = run("rnn_core.run", *SMALL, "--corpus", "timemachine", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    texts = result.stdout.splitlines()[2:]
    assert texts[0].startswith(" - time traveller") and texts[1].startswith(" - traveller")


def test_a_prefix_goes_through_the_corpus_preprocessing():
    require_book_corpus("timemachine")
    result = run("rnn_core.run", *SMALL, "--corpus", "timemachine", "--epochs", "1",
                 "--prefixes", "The TIME-Traveller")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].startswith(" - the time traveller")
    refused(run("rnn_core.run", *SMALL, "--corpus", "timemachine", "--epochs", "1",
                "--prefixes", "1895"), "--prefixes '1895' has nothing left after the corpus's "
            "preprocessing", "for example --prefixes time traveller")


def test_a_users_corpus_starts_from_its_first_word_in_either_unicode_form(tmp_path):
    composed = "café crème " * 400                        # é as one character (NFC)
    corpus = tmp_path / "cafe.txt"
    corpus.write_text(unicodedata.normalize("NFD", composed), encoding="utf-8")  # e + accent
    result = run("rnn_core.run", *SMALL, "--corpus", str(corpus), "--epochs", "1",
                 "--batch-size", "4", "--prefixes", unicodedata.normalize("NFC", "crème"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].startswith(" - crème")
    default = run("rnn_core.run", *SMALL, "--corpus", str(corpus), "--epochs", "1",
                  "--batch-size", "4")
    assert default.returncode == 0, default.stderr
    assert default.stdout.splitlines()[2].startswith(" - café")


def test_an_unusable_prefix_names_the_option(trained):
    refused(run("rnn_core.run", *SMALL, "--epochs", "1", "--prefixes", "分开", "QQ"),
            "--prefixes: 'QQ' has characters the vocabulary has never seen")
    refused(run("rnn_core.generate", "--checkpoint", str(trained), "--prefix", "QQ"),
            "--prefix: 'QQ' has characters the vocabulary has never seen")


def test_generate_continues_the_checkpoints_own_prefixes(tmp_path):
    path = tmp_path / "ck.npz"
    trained = run("rnn_core.run", *SMALL, "--epochs", "1", "--prefixes", "雨", "我们",
                  "--save", str(path))
    assert trained.returncode == 0, trained.stderr
    result = run("rnn_core.generate", "--checkpoint", str(path), "--num-chars", "6")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("雨") and second.startswith("我们") and len(second) == 8
    assert checkpoint.load(path).config["prefixes"] == ["雨", "我们"]


# ---- options do what they say -------------------------------------------------------------------
def test_top_k_alone_samples_and_with_temperature_0_is_refused(trained):
    args = ["--checkpoint", str(trained), "--num-chars", "30", "--prefix", "分开"]
    greedy = run("rnn_core.generate", *args)
    sampled = [run("rnn_core.generate", *args, "--top-k", "50", "--seed", seed)
               for seed in ("1", "2")]
    assert greedy.returncode == 0 and all(r.returncode == 0 for r in sampled)
    assert len({greedy.stdout, sampled[0].stdout, sampled[1].stdout}) == 3
    refused(run("rnn_core.generate", *args, "--top-k", "5", "--temperature", "0"),
            "--top-k 5 samples among the likeliest characters, but --temperature 0")


@pytest.mark.parametrize("module,args,message", [
    ("rnn_core.generate", ["--temperature", "nan"], "--temperature: must be 0 or a positive "
                                                    "finite number, got 'nan'"),
    ("rnn_core.generate", ["--temperature", "inf"], "--temperature: must be 0 or a positive "
                                                    "finite number, got 'inf'"),
    ("rnn_core.generate", ["--seed", "-1"], "--seed: must be 0 or a positive integer, got '-1'"),
    ("rnn_core.run", ["--seed", "-3"], "--seed: must be 0 or a positive integer, got '-3'"),
    ("rnn_core.compare", ["--seed", "-3"], "--seed: must be 0 or a positive integer"),
    ("rnn_core.identity", ["--seed", "-3"], "--seed: must be 0 or a positive integer"),
    ("rnn_core.run", ["--pred-len", "1000000000"], "write long texts with python -m "
                                                   "rnn_core.generate"),
])
def test_a_value_an_option_cannot_take_names_the_option(trained, module, args, message):
    extra = {"rnn_core.generate": ["--checkpoint", str(trained)],
             "rnn_core.run": ["--epochs", "1", "--hidden", "8"]}.get(module, [])
    refused(run(module, *extra, *args), message)


@pytest.mark.parametrize("module", TOOLS)
def test_a_mistyped_option_is_one_line_not_the_usage(module):
    result = run(module, "--no-such-option", "--checkpoint", "x.npz")
    assert result.returncode == 2 and result.stderr in (
        f"error: unrecognized arguments: {args} (python -m {module} --help lists the options)\n"
        for args in ("--no-such-option", "--no-such-option --checkpoint x.npz"))


def test_a_tiny_temperature_is_greedy_not_an_error(trained):
    args = ["--checkpoint", str(trained), "--num-chars", "20"]
    tiny = run("rnn_core.generate", *args, "--temperature", "1e-300")
    assert tiny.returncode == 0, tiny.stderr
    assert tiny.stdout == run("rnn_core.generate", *args).stdout


def test_an_infinite_loss_is_reported_like_nan(tmp_path, trained, backend_name):
    saved = checkpoint.load(trained)
    b_q = saved.params.b_q.copy()
    b_q[:] = -3e38
    b_q[0] = 3e38                # finite weights whose loss overflows to +inf
    saved.params = saved.params._replace(b_q=b_q)
    checkpoint.save(tmp_path / "inf.npz", saved)
    result = run("rnn_core.run", "--resume", str(tmp_path / "inf.npz"), "--epochs", "3",
                 "--backend", backend_name)
    refused(result, "the loss became inf at epoch 3, batch 1: lower --lr")


# ---- help ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", TOOLS)
def test_every_option_has_help_with_its_default(module):
    parser = importlib.import_module(module).parser()
    assert re.fullmatch(r"[A-Z][^`]*\.", parser.description), parser.description
    for action in parser._actions:
        if action.help in (None, "==SUPPRESS==") or action.dest == "help":
            assert action.help == "==SUPPRESS==" or action.dest == "help", action.dest
            continue
        assert "`" not in action.help
        assert "default" in action.help or "required" in action.help, action.option_strings
    result = run(module, "--help")
    assert result.returncode == 0 and parser.description.split()[0] in result.stdout


def test_the_readmes_option_list_is_runs():
    from rnn_core.run import parser
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
        text = readme.read()
    listed = re.search(r"`python -m rnn_core.run --help` lists the options: (.*?)\.\n\n",
                       text, re.S).group(1)
    options = {option for action in parser()._actions for option in action.option_strings
               if option.startswith("--") and option != "--help"}
    assert set(re.findall(r"`(--[a-z0-9-]+)", listed)) == options


# ---- framework noise ----------------------------------------------------------------------------
def test_the_users_own_log_settings_win():
    environ = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    cli.quiet_framework_logs(environ)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "0"}
    environ = {}
    cli.quiet_framework_logs(environ)
    assert environ == cli.QUIET_LOGS


# What TensorFlow 2.21 wrote while it loaded, at TF_CPP_MIN_LOG_LEVEL=3, on a CPU with AVX512_VNNI.
TENSORFLOWS_START_UP = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1795574556.631988   12001 port.cc:153] oneDNN custom operations are on.\n"
    b"W0000 00:00:1795574556.7   12001 cpu_feature_guard.cc:227] a warning\n"
    b"E1125 02:01:57.478834   12001 util.cc:131] an error that is not one\n")


@pytest.mark.parametrize("level,shown", [("3", False), ("0", True)])
def test_the_start_up_lines_tensorflow_writes_whatever_its_level_are_hidden(capfd, monkeypatch,
                                                                            level, shown):
    """At the tools' quiet level the lines Abseil writes before it is set up are dropped while a
    framework loads; a fatal line and anything else pass, in order. The user's level shows all."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    kept = [b"F0000 00:00:1795574556.8   12001 x.cc:1] a fatal line\n", b"a line of its own\n",
            b"Traceback, with no newline at the end"]
    with cli.start_up_lines_hidden():
        os.write(2, TENSORFLOWS_START_UP + kept[0])
        os.write(2, kept[1] + TENSORFLOWS_START_UP + kept[2])
    expected = (TENSORFLOWS_START_UP + kept[0] + kept[1] + TENSORFLOWS_START_UP + kept[2]
                if shown else b"".join(kept))
    assert capfd.readouterr().err == expected.decode()
    os.write(2, TENSORFLOWS_START_UP)          # after loading, descriptor 2 is as it was
    assert capfd.readouterr().err == TENSORFLOWS_START_UP.decode()


def test_every_framework_loads_inside_backends_import_context(backend_name, monkeypatch):
    from rnn_core import backend as backend_module
    from conftest import backend
    entered = []

    def recorded():
        entered.append(backend_name)
        return contextlib.nullcontext()
    monkeypatch.setattr(backend_module, "framework_import_context", recorded)
    backend(backend_name)
    assert entered == [backend_name]


def test_only_the_tools_filter_what_a_framework_writes_while_it_loads():
    """run_main puts the filter in ``backend.framework_import_context``; a program that only
    imports rnn_core keeps every line."""
    program = ("import os, sys\n"
               "from rnn_core import backend, cli\n"
               "def load(argv=None):\n"
               "    with backend.framework_import_context():\n"
               f"        os.write(2, {TENSORFLOWS_START_UP!r})\n"
               "load() if sys.argv[1] == 'library' else sys.exit(cli.run_main(load))\n")
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    for how, shown in [("library", TENSORFLOWS_START_UP.decode()), ("tool", "")]:
        result = subprocess.run([sys.executable, "-c", program, how], capture_output=True,
                                text=True, cwd=ROOT, env=environ, timeout=300)
        assert (result.returncode, result.stderr) == (0, shown), how


# ---- compare and bench's children ---------------------------------------------------------------
@pytest.fixture
def child_module(tmp_path, monkeypatch):
    """A module run as a child: it reports its thread settings, or fails with a traceback."""
    (tmp_path / "child_probe.py").write_text(
        "import json, os, sys, time\n"
        "from rnn_core import cli\n"
        "spec = json.loads(sys.argv[2])\n"
        "cli.become_child()\n"
        "if spec['action'] == 'fail':\n"
        "    print('first line of the reason', file=sys.stderr)\n"
        "    raise KeyError('the missing key')\n"
        "if spec['action'] == 'sleep':\n"
        "    time.sleep(600)\n"
        "print(json.dumps({v: os.environ.get(v) for v in cli.THREAD_VARIABLES}))\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), ROOT]))
    return "child_probe"


def test_a_failing_child_shows_its_whole_error(child_module):
    result = cli.run_child(child_module, {"action": "fail"}, timeout=120)
    assert "first line of the reason" in result["error"]
    assert "Traceback" in result["error"] and "KeyError: 'the missing key'" in result["error"]
    assert cli.last_line(result["error"]) == "KeyError: 'the missing key'"


def test_a_childs_refusal_is_quoted_without_its_error_prefix():
    """A table cell or a summary quotes a child's one-line refusal, not ``error: error: ...``."""
    assert cli.last_line("note\nerror: --lr: must be a positive number") == (
        "--lr: must be a positive number")
    assert cli.last_line("") == "failed"


def test_every_child_gets_the_same_thread_settings(child_module):
    result = cli.run_child(child_module, {"action": "report"}, timeout=120, threads=3)
    assert result == {name: "3" for name in cli.THREAD_VARIABLES}


def test_compare_prints_a_childs_whole_error():
    """A mistake compare can see is refused before any child (a missing corpus, test_compare); one
    that only training meets, a loss that diverges, is the child's, and printed whole."""
    result = run("rnn_core.compare", "--backends", "numpy", "--epochs", "1", "--hidden", "8",
                 "--lr", "1e38", "--clip", "1e38")
    refused(result, "every backend failed: numpy (the errors are above)")
    assert "  numpy: error: the loss became" in result.stderr       # printed once, whole
    assert result.stderr.count("the loss became") == 1


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("module,args", [
    ("rnn_core.compare", ["--backends", "numpy", "--epochs", "100000", "--hidden", "8"]),
    ("rnn_core.bench", ["--backends", "numpy", "--paths", "fast", "--epochs", "100000",
                        "--hidden", "8", "--corpus", "lyrics_zh", "--repeats", "1"]),
])
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_stopping_compare_or_bench_ends_its_child(module, args, how):
    parent = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not children(parent.pid):
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.1)
        child = children(parent.pid)[0]
        time.sleep(1)                     # let the child start its framework
        parent.send_signal(how)           # to the parent only, not its process group
        parent.wait(timeout=60)
        deadline = time.monotonic() + 60
        while alive(child):
            assert time.monotonic() < deadline, f"child {child} still runs"
            time.sleep(0.1)
        assert "Traceback" not in parent.stderr.read().decode()
    finally:
        if parent.poll() is None:
            parent.kill()
