"""The files the tools write (a checkpoint, a plot, a JSON summary): checked before any training
starts, then written so that nothing the user had is lost.

:func:`check_output` is called for each ``--save``, ``--plot`` and ``--json`` before the first
epoch. It refuses, with one line naming the option and the fix:

* an empty name, a folder, a device, a pipe or any other file that is not a regular file;
* an existing file that is not what the option writes (a checkpoint, a PNG, JSON), so that a
  mistyped ``--save notes.txt`` or ``--plot corpus.txt`` never replaces the user's own file;
  an empty file may be replaced;
* a read-only file, a folder that cannot be made or written to, or a disk without the room;
* a symbolic link that cannot be followed (a loop). Other links are written through: the file
  they point to is replaced and the link is kept, as ``cp`` and ``>`` do.

:func:`check_distinct` refuses two options naming one file (``--plot`` over the corpus or the
checkpoint being resumed; ``--save`` over the resumed checkpoint is allowed, and continues it).

:func:`write_atomically` writes the bytes to a temporary file in the same folder, flushes it to
disk and renames it over the target: an interrupted or failed write leaves the old file as it
was and no temporary file behind. A new file gets the mode any file the user creates gets (the
umask applies); a replaced file keeps its mode.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import zipfile
from pathlib import Path

from rnn_core.errors import OutputError

# What each kind of output is called, an example name, and how to recognise one already there.
KINDS = {
    "checkpoint": ("an rnn-core checkpoint", "model.npz"),
    "png": ("a PNG image", "curve.png"),
    "json": ("a JSON file", "results.json"),
}


def _is_checkpoint(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "record.json.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False


def _starts_with(path: Path, accept) -> bool:
    try:
        with open(path, "rb") as f:
            return accept(f.read(64))
    except OSError:
        return False


LOOKS_LIKE = {
    "checkpoint": _is_checkpoint,
    "png": lambda path: _starts_with(path, lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    "json": lambda path: _starts_with(path, lambda head: head.lstrip()[:1] in (b"{", b"[")),
}


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def fix_for(error: OSError, option: str) -> str:
    """What the user can do about an ``OSError`` met writing ``option``'s file."""
    where = f"give {option} a path" if option else "write to a path"
    return {
        errno.ENOSPC: f"free some space on that disk, or {where} on another disk",
        errno.EDQUOT: f"free some space (your disk quota is used up), or {where} elsewhere",
        errno.EACCES: f"make the folder writable for you, or {where} in a folder you own",
        errno.EPERM: f"make the folder writable for you, or {where} in a folder you own",
        errno.EROFS: f"that disk is mounted read-only: {where} on a writable disk",
        errno.ENAMETOOLONG: f"{where} with a shorter name",
        errno.ENOTDIR: f"part of the path is a file, not a folder: {where} through folders only",
        errno.EEXIST: f"part of the path is a file, not a folder: {where} through folders only",
        errno.ELOOP: f"a symbolic link on the way loops back: fix the link, or {where} elsewhere",
    }.get(error.errno, f"{where} elsewhere")


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def check_output(path, option: str, kind: str, need_bytes: int = 0, *,
                 rewritten: bool = False) -> Path:
    """Check that ``option``'s file can be written (see the module doc), making its folder if
    it is missing; return the path written (a symbolic link's target). ``need_bytes``: the
    file's size; ``rewritten``: the run writes it again over itself (a checkpoint saved every few
    epochs), and :func:`write_atomically` writes the new copy beside the old before the old goes,
    so from the second write on the disk holds both."""
    text = os.fspath(path)
    what, example = KINDS[kind]
    if not text.strip():
        raise OutputError(f"{option} is empty: give a file name, for example {option} {example}")
    given = Path(text).expanduser()
    if text.endswith(("/", os.sep)) and not given.is_dir():     # Path drops the slash
        raise OutputError(f"{option} {text} names a folder (it ends with /): give a file name in "
                          f"it, for example {option} {given / example}")
    try:
        info = os.stat(given)    # through links: what would be written
    except FileNotFoundError:
        info = None              # a new file, or a link to one: made when written
    except OSError as error:     # a loop of links, a path through a file, no permission
        raise OutputError(f"{option} {text}: cannot reach it ({_reason(error)}): "
                          f"{fix_for(error, option)}") from error
    target = Path(os.path.realpath(given))
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{option} {text} is a folder: give a file name in it, for "
                              f"example {option} {given / example}")
        if not stat.S_ISREG(info.st_mode):
            raise OutputError(f"{option} {text} is {_file_type(info.st_mode)}, not a file it "
                              f"can write: give a file name, for example {option} {example}")
        if info.st_size and not LOOKS_LIKE[kind](target):
            raise OutputError(f"{option} {text} already exists and is not {what}: it is left "
                              f"alone. Give another name, or delete the file first if it may go")
    folder = target.parent
    made = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(_create_temporary(folder, target.name, 0o600, "probe", made))  # can we write?
        os.unlink(made.pop())
    except OSError as error:
        raise OutputError(f"{option} {text}: cannot write in the folder {folder} "
                          f"({_reason(error)}): {fix_for(error, option)}") from error
    finally:
        _remove(made)           # where Ctrl-C or SIGTERM came in between
    if info is not None and not os.access(target, os.W_OK):
        raise OutputError(f"{option} {text} is read-only: make it writable (chmod u+w) or give "
                          "another name")
    free = shutil.disk_usage(folder).free
    there = info.st_size if info is not None else 0        # the bytes the old copy holds now
    needed = 2 * need_bytes - min(there, need_bytes) if rewritten else need_bytes
    if needed > free:
        fix = fix_for(OSError(errno.ENOSPC, ""), option)
        twice = f" ({_size(needed)} while a save replaces the last one)" if rewritten else ""
        raise OutputError(f"{option} {text}: {what} of about {_size(need_bytes)}{twice} does "
                          f"not fit in {folder}, which has {_size(free)} free: {fix}")
    return target


def check_distinct(paths: dict, may_share: tuple = ()) -> None:
    """``paths``: ``{option: path or None}``, inputs and outputs together. Refuse two options
    that name the same file, except the pairs in ``may_share`` (``("--save", "--resume")``)."""
    named = [(option, Path(os.path.realpath(Path(os.fspath(path)).expanduser())))
             for option, path in paths.items() if path is not None]
    for i, (option, path) in enumerate(named):
        for other, other_path in named[:i]:
            if (other, option) in may_share or (option, other) in may_share:
                continue
            same = path == other_path
            try:
                same = same or os.path.samefile(path, other_path)     # hard links
            except OSError:
                pass                                   # one of them does not exist (yet)
            if same:
                raise OutputError(f"{option} and {other} name the same file, {path}: "
                                  f"writing {option} would replace it. Give {option} another name")


def _create_temporary(folder: Path, name: str, mode: int, suffix: str, made: list) -> int:
    """A new file ``.NAME.RANDOM.SUFFIX`` in ``folder``, opened for writing (its descriptor). Its
    path joins ``made`` before the file exists, so that a caller stopped at any point (Ctrl-C or
    SIGTERM right after ``open``) can remove it with :func:`_remove`. ``open`` with ``O_EXCL``
    applies the umask to ``mode``, which ``tempfile.mkstemp`` (always 0600) does not."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        made.append(folder / f".{name}.{secrets.token_hex(4)}.{suffix}")
        try:
            return os.open(made[-1], flags, mode)
        except FileExistsError:
            made.pop()          # another's file, not ours to remove


def _remove(made: list) -> None:
    """Remove the temporary files in ``made`` that exist (best effort: it runs on the way out)."""
    for path in made:
        try:
            if os.path.lexists(path):
                os.unlink(path)
        except OSError:
            pass


def write_atomically(path, data: bytes, what: str = "the file") -> Path:
    """Replace ``path`` (through a symbolic link, its target) by ``data``, or leave it as it was.
    A failure raises :class:`OutputError` naming the file and the fix."""
    path = Path(os.fspath(path)).expanduser()
    target = Path(os.path.realpath(path))
    made = []                   # the temporary file, from before it exists until it is renamed
    try:
        try:
            old = os.stat(target)
        except FileNotFoundError:
            old = None
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor = _create_temporary(
            target.parent, target.name, stat.S_IMODE(old.st_mode) if old else 0o666, "tmp", made)
        with os.fdopen(descriptor, "wb") as out:
            if old is not None:
                os.fchmod(out.fileno(), stat.S_IMODE(old.st_mode))  # the umask made it narrower
                if os.geteuid() == 0 and old.st_uid != 0:   # root replacing a user's file
                    os.fchown(out.fileno(), old.st_uid, old.st_gid)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(made[-1], target)
        made.clear()
        _sync_folder(target.parent)
    except OSError as error:
        kept = " The file already there is left as it was." if target.exists() else ""
        raise OutputError(f"could not write {what} {path} ({_reason(error)}): "
                          f"{fix_for(error, '')}.{kept}") from error
    finally:
        _remove(made)
    return path


def _sync_folder(folder: Path) -> None:
    """Flush the rename itself to disk (best effort: some file systems cannot)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _size(num_bytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if num_bytes < 1000 or unit == "TB":
            return f"{num_bytes:.0f} {unit}" if unit == "bytes" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1000
    return ""
