"""Files edgeopt writes and reads.

Atomic writes: every file edgeopt writes (checkpoints, .edgeopt engines, ONNX exports) goes to a
temp file in the same folder, is fsynced, then renamed over the target, so a crash or an exception
never leaves a half-written file in its place (an existing file stays as it was).

- Permissions: a new file gets 0o666 minus the umask (0644 under umask 022), applied by the kernel
  when the temp file is created, so the umask is never read or changed (no race with other
  threads). Overwriting keeps the existing file's mode (and, where allowed, its owner and group).
- Temp files: ``.<name>.<host>-<pid>-<start>.<random>.tmp``. ``host`` is a hash of the host name
  and the pid namespace, ``start`` the writer's start time (/proc/<pid>/stat), so a later save of
  the same target can tell a writer that died (kill -9, power loss) from a live one, even when the
  pid has been reused, and removes only the dead writers' temps. No error path leaves a temp file.

Metadata JSON (``parse_json``): files are untrusted, so the text is bounded in size and nesting
depth before ``json.loads`` sees it (deep nesting would otherwise hit Python's recursion limit).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket

import numpy as np

__all__ = ["atomic_write", "atomic_write_bytes", "parse_json", "MAX_JSON_BYTES", "MAX_JSON_DEPTH"]

# ------------------------------------------------------------------------------- atomic writes
_TAG_CACHE: dict = {}  # pid -> tag; keyed by pid so a forked child computes its own


def _proc_start_time(pid) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a process from /proc, None if it has none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    # the command name (field 2) may hold spaces and parentheses: fields resume after the last ')'
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[0].decode("ascii", "replace"), int(fields[19])


def _host_tag() -> str:
    """Writers on other hosts (a shared network folder) or in other pid namespaces (containers) are
    invisible to the liveness check, so their temps are never touched."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        ns = 0
    return hashlib.sha1(f"{socket.gethostname()}/{ns}".encode()).hexdigest()[:8]


def _own_tag() -> str:
    pid = os.getpid()
    tag = _TAG_CACHE.get(pid)
    if tag is None:
        try:
            st = _proc_start_time("self")
            start = st[1] if st else 0
        except (OSError, ValueError, IndexError):
            start = 0  # no usable /proc: liveness falls back to the pid alone
        tag = _TAG_CACHE[pid] = f"{_host_tag()}-{pid}-{start}"
    return tag


def _temp_key(base: str) -> str:
    """The target's name as it appears in its temp names, shortened (with a hash, so it stays
    unique) when the temp name would pass the usual 255-byte limit."""
    if len(os.fsencode(base)) <= 180:
        return base
    return f"{base[:40]}~{hashlib.sha1(os.fsencode(base)).hexdigest()[:16]}"


def _writer_alive(pid: int, start: int) -> bool:
    if start:
        try:
            st = _proc_start_time(pid)
        except (OSError, ValueError, IndexError):
            return True  # cannot tell: keep the temp
        # gone, a zombie, or the pid now belongs to a process started at another time
        return st is not None and st[0] not in ("Z", "X") and st[1] == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def _remove_dead_temps(folder: str, key: str) -> None:
    """Remove temps of this target left by writers on this host that are no longer running."""
    pattern = re.compile(r"\." + re.escape(key) + r"\.([0-9a-f]{8})-([0-9]+)-([0-9]+)\.[0-9a-f]{8}\.tmp")
    host = _host_tag()
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for name in entries:
        m = pattern.fullmatch(name)
        if m is None or m.group(1) != host or _writer_alive(int(m.group(2)), int(m.group(3))):
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:  # another saver removed it first, or the folder is not ours to clean
            pass


def _keep_owner_and_mode(fd: int, old: os.stat_result) -> None:
    if hasattr(os, "fchown"):
        new = os.fstat(fd)
        if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
            # root can keep both; a user can keep the group if a member (a 0640 file stays readable
            # by its group); anything else is allowed to fail
            for uid in (old.st_uid, -1):
                try:
                    os.fchown(fd, uid, old.st_gid)
                    break
                except OSError:
                    pass
    os.chmod(fd, old.st_mode & 0o7777)  # after chown, which may clear set-id bits


def atomic_write(path, write) -> None:
    """Call write(binary file object) on a temp file beside `path`, then rename it to `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    os.makedirs(folder, exist_ok=True)
    key = _temp_key(base)
    _remove_dead_temps(folder, key)
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    # Created with the final permission bits (the kernel subtracts the umask, so never more open
    # than the target will be while the data is still being written).
    create_mode = (old.st_mode & 0o666) if old is not None else 0o666
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".{key}.{_own_tag()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, create_mode)
            break
        except FileExistsError:  # another thread of this process drew the same random suffix
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            if old is not None:
                _keep_owner_and_mode(f.fileno(), old)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


# ------------------------------------------------------------------------------- metadata JSON
MAX_JSON_BYTES = 16 << 20  # also the C++ loader's limit on the metadata section (kMaxMetaBytes)
MAX_JSON_DEPTH = 64

# A JSON string (escapes included), or an unterminated one up to the end of the text; written
# without nested alternation so matching stays linear whatever the input.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKET_STEP = np.zeros(256, np.int8)
_BRACKET_STEP[[ord("["), ord("{")]] = 1
_BRACKET_STEP[[ord("]"), ord("}")]] = -1


def json_depth(raw: bytes) -> int:
    """Deepest nesting of [ ] and { } outside strings (what json.loads would recurse through)."""
    outside = _JSON_STRING.sub(b"", raw)
    steps = _BRACKET_STEP[np.frombuffer(outside, np.uint8)]
    steps = steps[steps != 0]
    return int(np.cumsum(steps, dtype=np.int64).max()) if steps.size else 0


def parse_json(raw, what: str):
    """json.loads for untrusted bytes, with ValueError naming `what` (e.g. the file) for text
    that is too large, nested too deep, not UTF-8 or not JSON."""
    raw = bytes(raw)
    if len(raw) > MAX_JSON_BYTES:
        raise ValueError(f"{what}: metadata is {len(raw):,} bytes (limit {MAX_JSON_BYTES:,})")
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{what}: metadata nests {depth} levels deep (limit {MAX_JSON_DEPTH})")
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, huge ints
        raise ValueError(f"{what}: metadata is not valid JSON ({e})") from None
