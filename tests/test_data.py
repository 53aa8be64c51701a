"""Corpora and vocabularies: the book's sizes, the lookup order, downloads, and bad files."""
import hashlib
import http.server
import os
import re
import subprocess
import sys
import threading
import zipfile

import pytest

from rnn_core import data
from rnn_core.data import NamedCorpus, Vocab, load_corpus
from rnn_core.errors import CorpusError, VocabularyError

from conftest import require_book_corpus


def test_jaychou_first_10000_characters_have_1027_distinct():
    require_book_corpus("jaychou")
    corpus_indices, char_to_idx, idx_to_char, vocab_size = data.load_data_jay_lyrics()
    assert len(corpus_indices) == 10_000 and vocab_size == 1027 == len(idx_to_char)
    text = load_corpus("jaychou").chars
    assert "\n" not in text and "\r" not in text
    assert "".join(idx_to_char[i] for i in corpus_indices[:20]) == text[:20]


def test_timemachine_has_28_tokens_with_unk():
    require_book_corpus("timemachine")
    corpus_indices, vocab = data.load_data_time_machine()
    assert vocab.vocab_size == 28 and vocab.idx_to_char[0] == "<unk>"
    assert set(vocab.idx_to_char[1:]) == set("abcdefghijklmnopqrstuvwxyz ")
    assert len(corpus_indices) == 10_000
    assert vocab.decode(corpus_indices[:16]) == "the time machine"


def test_default_corpus_is_ours_and_holds_the_books_prefixes():
    corpus = load_corpus()
    assert corpus.name == "lyrics_zh" and corpus.source.parent == data.repository_data_dir()
    assert len(corpus.chars) == 10_000
    assert corpus.chars.count("不分开") >= 10 and corpus.chars.count("分开") >= 20
    assert len(load_corpus(max_chars=0).chars) >= 10_000


def test_the_corpus_is_encoded_once():
    """Training samples from ``corpus_indices`` every epoch; it is encoded once, not per epoch."""
    corpus = load_corpus()
    assert corpus.corpus_indices is corpus.corpus_indices
    assert corpus.vocab.decode(corpus.corpus_indices) == corpus.chars


def test_vocabulary_order_is_by_frequency_then_first_appearance():
    vocab = Vocab("babcxcc")
    assert vocab.idx_to_char == ["c", "b", "a", "x"]
    assert Vocab("ab", unk=True).idx_to_char == ["<unk>", "a", "b"]


def test_vocabulary_is_the_same_in_every_process():
    code = ("from rnn_core.data import load_corpus; "
            "print(''.join(load_corpus().vocab.idx_to_char[:40]))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1


def test_unseen_characters_are_listed_or_mapped_to_unk():
    with pytest.raises(VocabularyError, match=r"'x', 'z'"):
        Vocab("abc").encode("axbz")
    vocab = Vocab("abc", unk=True)
    assert vocab.encode("axb") == [vocab.char_to_idx["a"], vocab.unk, vocab.char_to_idx["b"]]


def test_letters_preprocessing_is_the_second_editions():
    assert data.preprocess("The Time-Machine,\n\n by H. G. Wells\n", "letters") == \
        "the time machineby h g wells"



def test_a_prefix_is_preprocessed_as_its_corpus_was_but_not_stripped():
    """A prefix meets the corpus's characters only after the same preprocessing: composed
    Unicode first (for letters, an accent typed apart is then one non-letter with its letter, as
    in the corpus), and for letters lower case with each run of other characters one space; its
    trailing space is kept (it asks for a new word). Without The Time Machine: test_printing
    checks the same through the command line, where that corpus is present."""
    assert data.prepare_prefix("The TIME-Traveller, ", "letters") == "the time traveller "
    assert data.prepare_prefix("cre\u0300me\n", "lyrics") == "cr\u00e8me "
    decomposed = "Cre\u0300me"                       # è as e and a combining accent: "cr me"
    assert data.prepare_prefix(decomposed, "letters") == data.preprocess(decomposed, "letters")

# ---- files ---------------------------------------------------------------------------------------
def test_txt_and_zip_files_load_the_same_text(tmp_path):
    text = "分开 不分开\n我们\r\n" * 50
    (tmp_path / "song.txt").write_text(text, encoding="utf-8")
    with zipfile.ZipFile(tmp_path / "song.txt.zip", "w") as archive:
        archive.writestr("song.txt", text.encode("utf-8"))
    from_txt = load_corpus(tmp_path / "song.txt")
    from_zip = load_corpus(tmp_path / "song.txt.zip")
    assert from_txt.chars == from_zip.chars == text.replace("\n", " ").replace("\r", " ")


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path):
    """Windows' Notepad saves "UTF-8" with one; it would be a character of the vocabulary and
    the first of the default prefix."""
    (tmp_path / "plain.txt").write_bytes("hello world\n".encode("utf-8") * 20)
    (tmp_path / "marked.txt").write_bytes(b"\xef\xbb\xbf" + "hello world\n".encode("utf-8") * 20)
    plain, marked = load_corpus(tmp_path / "plain.txt"), load_corpus(tmp_path / "marked.txt")
    assert marked.chars == plain.chars and marked.prefixes == plain.prefixes == ("hello",)
    assert marked.vocab.idx_to_char == plain.vocab.idx_to_char


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_bytes(b""), "no text"),
    (lambda p: p.write_bytes(b"  \n\n "), "no text"),
    (lambda p: p.write_bytes("abc".encode("utf-16")), "not UTF-8"),
])
def test_bad_text_files_get_a_clear_error(tmp_path, make, message):
    path = tmp_path / "corpus.txt"
    make(path)
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)


def test_bad_zip_files_get_a_clear_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.txt", "a")
        archive.writestr("b.txt", "b")
    with pytest.raises(CorpusError, match="exactly one text file, it holds 2: a.txt, b.txt"):
        load_corpus(tmp_path / "two.zip")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    with pytest.raises(CorpusError, match="it holds 0"):
        load_corpus(tmp_path / "empty.zip")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("good.txt", "some text " * 100)
    (tmp_path / "cut.zip").write_bytes(good.read_bytes()[:40])
    with pytest.raises(CorpusError, match="not a readable zip"):
        load_corpus(tmp_path / "cut.zip")


# ---- finding and downloading a named corpus -------------------------------------------------------
@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Empty data, repository and cache folders, and one named corpus to look for."""
    folders = {name: tmp_path / name for name in ("env", "repo", "cache")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setenv("RNN_CORE_DATA", str(folders["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(data, "repository_data_dir", lambda: folders["repo"])
    monkeypatch.setattr(data, "cache_dir", lambda: folders["cache"])
    body = ("twinkle little star " * 40).encode()
    monkeypatch.setitem(data.NAMED_CORPORA, "toy", NamedCorpus(
        "toy.txt", "lyrics", unk=False, sha1=hashlib.sha1(body).hexdigest(),
        url="http://127.0.0.1:9/toy.txt"))
    return folders, body


def test_lookup_order_is_env_then_repository_then_cache(sandbox):
    folders, body = sandbox
    for name in ("cache", "repo", "env"):
        (folders[name] / "toy.txt").write_bytes(body)
        assert data.find_corpus_file("toy") == folders[name] / "toy.txt"


def test_a_folder_that_may_not_be_looked_into_is_named_whatever_path_is_file_says(sandbox,
                                                                                   monkeypatch):
    """Python 3.14's ``Path.is_file`` answers False where ``stat`` is refused (3.12 raised), so
    the lookup asks ``os.stat``: an unreadable data folder is named with the fix, and nothing is
    downloaded. Here root's refusal is simulated, and ``is_file`` given 3.14's answer."""
    folders, _ = sandbox
    real_stat = os.stat

    def refused(path, *args, **kwargs):
        if str(path).startswith(str(folders["env"])):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)
    monkeypatch.setattr(os, "stat", refused)
    monkeypatch.setattr(data.Path, "is_file", lambda self: False)
    with pytest.raises(CorpusError, match=re.escape(f"in {folders['env']} (Permission denied): "
                                                    "make the folder readable")):
        data.find_corpus_file("toy")


@pytest.mark.parametrize("given", ["missing", "file", "~"])
def test_a_data_variable_that_names_no_folder_says_so(sandbox, monkeypatch, tmp_path, given):
    """RNN_CORE_DATA names a folder that does not exist, or a file (the corpus itself): the
    not-found line says so. A leading ``~`` (the variable set in quotes) is the home folder."""
    folders, body = sandbox
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    value = {"missing": str(tmp_path / "nowhere"), "file": str(tmp_path / "toy.txt"),
             "~": "~/corpora"}[given]
    (tmp_path / "toy.txt").write_bytes(body)
    monkeypatch.setenv("RNN_CORE_DATA", value)
    with pytest.raises(CorpusError) as error:
        data.find_corpus_file("toy")
    assert f" (RNN_CORE_DATA={value} " + ("is a file, not a folder)" if given == "file" else
                                          "does not exist)") in str(error.value)
    if given == "~":
        (tmp_path / "home" / "corpora").mkdir()
        (tmp_path / "home" / "corpora" / "toy.txt").write_bytes(body)
        assert data.find_corpus_file("toy") == tmp_path / "home" / "corpora" / "toy.txt"


def test_the_vocabulary_is_of_the_kept_characters_or_with_unk_of_the_whole_text(sandbox,
                                                                               monkeypatch):
    """The two editions' rules, on a text whose first 3 characters are "aab" and whose whole
    has 'b' most often and a 'c': lyrics (first edition) count the characters kept, so "c" is
    not in the vocabulary and "a" comes first; letters with ``<unk>`` (second edition) count the
    whole text, so "b" comes first and "c" is in it, although only "aab" is trained on."""
    folders, _ = sandbox
    (folders["env"] / "toy.txt").write_text("aab" + "b" * 5 + "c", encoding="utf-8")
    monkeypatch.setitem(data.NAMED_CORPORA, "toy", NamedCorpus("toy.txt", "lyrics", unk=False))
    lyrics = load_corpus("toy", max_chars=3)
    assert lyrics.chars == "aab" and lyrics.vocab.idx_to_char == ["a", "b"]
    monkeypatch.setitem(data.NAMED_CORPORA, "toy", NamedCorpus("toy.txt", "letters", unk=True))
    letters = load_corpus("toy", max_chars=3)
    assert letters.chars == "aab" and letters.vocab.idx_to_char == [data.UNK, "b", "a", "c"]

def test_a_damaged_named_corpus_is_refused(sandbox):
    folders, body = sandbox
    (folders["env"] / "toy.txt").write_bytes(body[:-1])
    with pytest.raises(CorpusError, match="sha1 .* not the book's"):
        load_corpus("toy")


@pytest.fixture
def server(tmp_path):
    """A web server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.RequestHandlerClass.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_missing_corpus_is_downloaded_verified_and_cached(sandbox, server, monkeypatch):
    folders, body = sandbox
    www, url = server
    (www / "toy.txt").write_bytes(body)
    named = data.NAMED_CORPORA["toy"]
    monkeypatch.setitem(data.NAMED_CORPORA, "toy", NamedCorpus(
        named.file, named.preprocess, named.unk, named.sha1, url + "/toy.txt"))
    assert load_corpus("toy").chars.startswith("twinkle")
    assert sorted(os.listdir(folders["cache"])) == ["toy.txt"]


def test_a_download_with_the_wrong_checksum_leaves_nothing(sandbox, server, monkeypatch):
    folders, body = sandbox
    www, url = server
    (www / "toy.txt").write_bytes(body + b"tampered")
    named = data.NAMED_CORPORA["toy"]
    monkeypatch.setitem(data.NAMED_CORPORA, "toy", NamedCorpus(
        named.file, named.preprocess, named.unk, named.sha1, url + "/toy.txt"))
    with pytest.raises(CorpusError, match="sha1"):
        load_corpus("toy")
    assert os.listdir(folders["cache"]) == []


def test_offline_and_not_found_says_where_to_put_the_file(sandbox):
    folders, _ = sandbox
    with pytest.raises(CorpusError) as info:
        load_corpus("toy")     # its URL points at a closed port on 127.0.0.1
    message = str(info.value)
    assert "Put toy.txt" in message and "RNN_CORE_DATA" in message
    for folder in folders.values():
        assert str(folder) in message
