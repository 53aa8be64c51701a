"""Corpora and vocabularies: the chapter's data, loaded the same way for every backend.

A corpus is named (``jaychou``, ``timemachine``, or ``lyrics_zh``, the small corpus this project
wrote and ships in ``data/``) or given as a path to a ``.txt`` or a ``.zip`` holding one text file.
A named corpus is looked up, in order, in

1. the folder named by the environment variable ``RNN_CORE_DATA``,
2. the repository's ``data/`` folder (installed, the package ``rnn_core.corpora``),
3. the user cache folder (``$XDG_CACHE_HOME/rnn-core``, by default ``~/.cache/rnn-core``),
4. and finally downloaded from the book's public location into the cache, verified by sha1.

The two preprocessings are the book's:

* ``lyrics`` (first edition, Jay Chou): newlines and carriage returns become spaces.
* ``letters`` (second edition, The Time Machine): each line keeps its letters only, runs of other
  characters become one space, the line is stripped and lower-cased, and the lines are joined.

Both first bring the text to Unicode's composed form (NFC), so that "é" typed as one character
and "é" stored as "e" plus an accent are the same character (the book's corpora are already in
NFC: it changes nothing there), and keep the first ``max_chars`` characters (10,000 by default,
as in the book; 0 keeps all). A prefix to generate from goes through the same preprocessing
(:func:`prepare_prefix`), so ``Time Traveller`` finds The Time Machine's ``time traveller``.

Each corpus has default prefixes: the book's 分开 and 不分开 for the lyrics, "time traveller" and
"traveller" for The Time Machine, and the first word of a user's own file (its first two
characters where the text has no spaces).

The vocabulary is deterministic: most frequent character first, ties in order of first appearance
(the second edition's rule). The first edition's ``list(set(corpus_chars))`` gives a different
order in every Python process, so its indices cannot be compared between runs; ours can.
"""
from __future__ import annotations

import collections
import errno
import functools
import hashlib
import os
import re
import stat
import tempfile
import unicodedata
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_core.errors import CorpusError, VocabularyError

UNK = "<unk>"
DEFAULT_CORPUS = "lyrics_zh"
DEFAULT_MAX_CHARS = 10_000


@dataclass(frozen=True)
class NamedCorpus:
    file: str
    preprocess: str            # 'lyrics' or 'letters'
    unk: bool                  # whether the vocabulary reserves '<unk>' (second edition)
    sha1: str | None = None    # verified wherever the file is found
    url: str | None = None     # the book's public copy
    prefixes: tuple = ()       # to generate from while training, unless --prefixes says otherwise


NAMED_CORPORA = {
    "jaychou": NamedCorpus(
        "jaychou_lyrics.txt.zip", "lyrics", unk=False,
        sha1="9529987e701a4f37048ab778270a5dde9a762a0b",
        url="https://raw.githubusercontent.com/d2l-ai/d2l-zh/v1/data/jaychou_lyrics.txt.zip",
        prefixes=("分开", "不分开")),
    "timemachine": NamedCorpus(
        "timemachine.txt", "letters", unk=True,
        sha1="090b5e7e70c295757f55df93cb0a180b9691891a",
        url="http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt",
        prefixes=("time traveller", "traveller")),
    "lyrics_zh": NamedCorpus("lyrics_zh.txt", "lyrics", unk=False, prefixes=("分开", "不分开")),
}


class Vocab:
    """``idx_to_char`` (a list), ``char_to_idx`` (a dict) and ``vocab_size``, as in the book."""

    def __init__(self, text: str, *, unk: bool = False):
        counts = collections.Counter(text)          # insertion order = order of first appearance
        ordered = sorted(counts, key=lambda char: -counts[char])  # stable: ties keep that order
        self.idx_to_char = [UNK] + ordered if unk else ordered
        self.char_to_idx = {char: i for i, char in enumerate(self.idx_to_char)}
        self.unk = self.char_to_idx[UNK] if unk else None

    @classmethod
    def from_list(cls, idx_to_char: list, *, unk: bool = False) -> "Vocab":
        """The vocabulary a checkpoint recorded, in its order."""
        vocab = cls("")
        vocab.idx_to_char = list(idx_to_char)
        vocab.char_to_idx = {char: i for i, char in enumerate(vocab.idx_to_char)}
        vocab.unk = vocab.char_to_idx[UNK] if unk else None
        return vocab

    @property
    def vocab_size(self) -> int:
        return len(self.idx_to_char)

    def __len__(self) -> int:
        return len(self.idx_to_char)

    def encode(self, text: str) -> list[int]:
        """Indices of ``text``; unseen characters become ``<unk>``, or raise if there is none."""
        if self.unk is None:
            unseen = sorted(set(text) - self.char_to_idx.keys())
            if unseen:
                raise VocabularyError(
                    f"{text!r} has characters the vocabulary has never seen: "
                    f"{', '.join(repr(char) for char in unseen)}. The vocabulary holds the "
                    f"{self.vocab_size} character{'s' * (self.vocab_size != 1)} of the training "
                    "corpus: use only those (or train on a corpus that contains them)")
            return [self.char_to_idx[char] for char in text]
        return [self.char_to_idx.get(char, self.unk) for char in text]

    def decode(self, indices) -> str:
        return "".join(self.idx_to_char[int(i)] for i in indices)


@dataclass
class Corpus:
    """A loaded corpus: its characters after preprocessing, their indices, and the vocabulary."""
    name: str
    source: Path
    chars: str
    vocab: Vocab
    spec: str = ""             # what was asked for: a name, or a file's absolute path
    max_chars: int = DEFAULT_MAX_CHARS
    preprocessing: str = "lyrics"
    prefixes: tuple = ()       # the defaults to generate from (see the module doc)

    @functools.cached_property
    def corpus_indices(self) -> np.ndarray:
        """The characters' indices, ``(len(chars),)`` int64, encoded once: every epoch samples
        from them, and encoding Jay Chou's 10,000 characters took 1.5 ms on a 2-core CPU, against
        about 10 ms for bench's whole fast epoch on an H100."""
        return np.array(self.vocab.encode(self.chars), dtype=np.int64)


# ---- finding the file --------------------------------------------------------------------------
def repository_data_dir() -> Path:
    """``data/`` of a source checkout; in an installed wheel, its copy ``rnn_core/corpora/``."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "data"
    return checkout if (checkout / NAMED_CORPORA[DEFAULT_CORPUS].file).is_file() else here / "corpora"


def cache_dir() -> Path:
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "rnn-core"
    try:
        return Path.home() / ".cache" / "rnn-core"
    except RuntimeError:         # no HOME and no entry in the password database
        return Path(tempfile.gettempdir()) / "rnn-core-cache"


def search_dirs() -> list[Path]:
    """The folders searched for a named corpus, in order (the download goes to the last)."""
    given = os.environ.get("RNN_CORE_DATA")
    folders = [Path(os.path.expanduser(given))] if given else []     # "~/data" in quotes too
    folders += [repository_data_dir(), cache_dir()]
    return folders


def data_folder_mistake() -> str:
    """``' (RNN_CORE_DATA=... does not exist)'`` where the variable names a path that is missing
    or a file (the first place a named corpus is looked for); else ``''``."""
    given = os.environ.get("RNN_CORE_DATA")
    if not given or os.path.isdir(os.path.expanduser(given)):
        return ""
    what = ("is a file, not a folder" if os.path.exists(os.path.expanduser(given)) else
            "does not exist")
    return f" (RNN_CORE_DATA={given} {what})"


def sha1_of(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _verified(path: Path, named: NamedCorpus) -> Path:
    if named.sha1 and sha1_of(path) != named.sha1:
        raise CorpusError(
            f"{path} has sha1 {sha1_of(path)}, not the book's {named.sha1}: the file is damaged "
            "or a different version. Delete it (it is downloaded again when online) or replace "
            "it with the book's copy")
    return path


def download(url: str, destination: Path, sha1: str | None, timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``destination`` atomically: a temporary file in the same folder, its sha1
    checked, then renamed into place. A failure leaves no partial file behind."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=".download-")
    try:
        with os.fdopen(descriptor, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
            out.write(r.read())
        got = sha1_of(Path(temporary))
        if sha1 and got != sha1:
            raise CorpusError(f"downloaded {url} has sha1 {got}, expected {sha1}; try again later")
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return destination


def find_corpus_file(name: str) -> Path:
    """The path of named corpus ``name``: searched for, else downloaded (see the module doc)."""
    named = NAMED_CORPORA[name]
    folders = search_dirs()
    for folder in folders:
        try:    # os.stat: Python 3.14's Path.is_file says False in a folder it may not read
            found = stat.S_ISREG(os.stat(folder / named.file).st_mode)
        except OSError as error:
            found = False
            if error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):   # may not look in
                raise CorpusError(
                    f"cannot look for {named.file} in {folder} ({error.strerror}): make the "
                    "folder readable, or point RNN_CORE_DATA at another folder that holds the "
                    "file") from error
        if found:
            return _verified(folder / named.file, named)
    where = ", ".join(str(folder) for folder in folders) + data_folder_mistake()   # one line
    if named.url is None:
        raise CorpusError(f"corpus {name!r} ({named.file}) is in none of: {where}; put it in "
                          "one of them, or point RNN_CORE_DATA at the folder that holds it")
    try:
        return download(named.url, cache_dir() / named.file, named.sha1)
    except (OSError, ValueError) as error:   # no network, refused, or a write that failed
        raise CorpusError(
            f"corpus {name!r} was not found and could not be downloaded from {named.url} "
            f"({error}). Put {named.file} (sha1 {named.sha1}) in one of: {where}; or point "
            "RNN_CORE_DATA at the folder that holds it") from error


# ---- reading and preprocessing -----------------------------------------------------------------
def read_text(path: Path) -> str:
    """The UTF-8 text of a ``.txt`` file, or of the one text member of a ``.zip``; a byte-order
    mark that some editors put first is not part of the text."""
    path = Path(path)
    try:
        is_file = stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        is_file = False
    except OSError as error:
        raise CorpusError(f"cannot read corpus file {path} ({error.strerror}): make it and its "
                          f"folder readable (chmod u+r {path}) or copy it somewhere you can "
                          "read") from error
    if not is_file:
        raise CorpusError(f"corpus file {str(path)!r} does not exist (or is not a file); give a "
                          f".txt or .zip path, or one of the names {', '.join(NAMED_CORPORA)}")
    try:
        if zipfile.is_zipfile(path) or path.suffix == ".zip":
            data = _read_zip_member(path)
        else:
            data = path.read_bytes()
    except PermissionError as error:
        raise CorpusError(f"cannot read corpus file {path} ({error.strerror}): make it readable "
                          f"(chmod u+r {path}) or copy it somewhere you can read") from error
    except OSError as error:
        raise CorpusError(f"cannot read corpus file {path} ({error.strerror}): check the file "
                          "and the disk, or copy the text to another file") from error
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorpusError(
            f"{path} is not UTF-8 text (byte {error.start} is {data[error.start:error.start + 1]!r}"
            "): save it as UTF-8 and try again") from error


def _read_zip_member(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info.filename for info in archive.infolist()   # no folders, no names
                       if info.filename and not info.filename.endswith("/")    # (a damaged one)
                       and not info.filename.startswith("__MACOSX/")]
            wanted = [m for m in members if Path(m).name == path.stem] or members
            if len(wanted) != 1:
                raise CorpusError(
                    f"{path} must hold exactly one text file, it holds {len(members)}"
                    f"{': ' + ', '.join(members) if members else ''}; unzip the one you want and "
                    "give its path")
            return archive.read(wanted[0])
    except (CorpusError, PermissionError):
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error,
            NotImplementedError, ValueError) as error:   # damaged data, unknown compression
        raise CorpusError(f"{path} is not a readable zip archive ({error}); download it again "
                          "or give the text file itself") from error


def preprocess(text: str, how: str) -> str:
    text = unicodedata.normalize("NFC", text)
    if how == "lyrics":
        return text.replace("\n", " ").replace("\r", " ")
    if how == "letters":
        return "".join(re.sub("[^A-Za-z]+", " ", line).strip().lower()
                       for line in text.splitlines())
    raise ValueError(f"unknown preprocessing {how!r}: choose lyrics or letters")


def prepare_prefix(prefix: str, how: str) -> str:
    """A prefix as the corpus's preprocessing would have written it: composed Unicode (NFC);
    with ``letters``, lower-cased, each run of other characters one space. Nothing is
    stripped, so ``"the "`` still ends with a space."""
    prefix = unicodedata.normalize("NFC", prefix)
    if how == "letters":
        return re.sub("[^A-Za-z]+", " ", prefix).lower()
    return preprocess(prefix, how)


def usable_prefix(given: str, how: str, vocab: "Vocab", option: str, example: str) -> str:
    """``given`` through :func:`prepare_prefix`, or an error naming ``option``: a prefix that is
    empty, that the preprocessing leaves nothing of, or that the vocabulary cannot read."""
    prefix = prepare_prefix(given, how)
    if not given:
        problem = "is empty"
    elif not prefix.strip() and prefix != given:
        problem = "has nothing left after the corpus's preprocessing (letters only)"
    else:
        try:
            vocab.encode(prefix)
            return prefix
        except VocabularyError as error:
            raise VocabularyError(f"{option}: {error}") from None
    raise VocabularyError(f"{option} {given!r} {problem}: give at least one character of the "
                          f"corpus to start from, for example {option} {example}")


def preprocessing_of(spec: str) -> str:
    """The preprocessing of the corpus a checkpoint names: a named corpus's own, else ``lyrics``."""
    named = NAMED_CORPORA.get(spec)
    return named.preprocess if named else "lyrics"


def first_word(chars: str) -> tuple:
    """A user's corpus's default prefix: its first word, or its first two characters where the
    text has no spaces between words (Chinese) or the word is long."""
    words = chars.split()
    word = words[0] if words else chars[:2]
    return (word if len(word) <= 12 else word[:2],)


def load_corpus(corpus: str | os.PathLike | None = None, *, max_chars: int = DEFAULT_MAX_CHARS,
                preprocessing: str | None = None) -> Corpus:
    """Load a named corpus or a file and build its vocabulary (see the module doc).

    The lyrics preprocessing builds the vocabulary from the characters kept, as the first edition
    does (1,027 for Jay Chou's first 10,000); the letters preprocessing from the whole text, with
    ``<unk>``, as the second edition does (28 for The Time Machine).
    """
    if max_chars is None or max_chars < 0:
        raise ValueError(f"max_chars must be 0 (keep all) or positive, got {max_chars!r}")
    name = DEFAULT_CORPUS if corpus is None else str(corpus)
    if name in NAMED_CORPORA:
        named = NAMED_CORPORA[name]
        path = find_corpus_file(name)
        spec = name
    else:
        path = Path(name).expanduser()
        named = NamedCorpus(path.name, "lyrics", unk=False)
        name = path.stem.split(".")[0]
        spec = os.path.abspath(path)     # recorded in checkpoints: found again from any folder
    how = preprocessing or named.preprocess
    text = preprocess(read_text(path), how)
    chars = text[:max_chars] if max_chars else text
    if not chars.strip():
        raise CorpusError(f"corpus {str(path)!r} has no text after {how} preprocessing; "
                          "give a file with some text in it")
    vocab = Vocab(text if named.unk else chars, unk=named.unk)
    return Corpus(name=name, source=path, chars=chars, vocab=vocab, spec=spec,
                  max_chars=max_chars, preprocessing=how,
                  prefixes=named.prefixes or first_word(chars))


def load_data_jay_lyrics(max_chars: int = DEFAULT_MAX_CHARS):
    """The book's ``load_data_jay_lyrics``: ``(corpus_indices, char_to_idx, idx_to_char, vocab_size)``."""
    corpus = load_corpus("jaychou", max_chars=max_chars)
    return (corpus.corpus_indices, corpus.vocab.char_to_idx, corpus.vocab.idx_to_char,
            corpus.vocab.vocab_size)


def load_data_time_machine(max_tokens: int = DEFAULT_MAX_CHARS):
    """The second edition's Time Machine characters: ``(corpus_indices, vocab)``."""
    corpus = load_corpus("timemachine", max_chars=max_tokens)
    return corpus.corpus_indices, corpus.vocab
