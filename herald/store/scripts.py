"""The Lua scripts of ``lua/``: read once, registered on a client, called by name.

Each ``lua/<name>.lua`` opens with a header saying what it does and naming every KEYS and
ARGV entry, one a line (``-- KEYS[1] record: the job's record hash herald:job:<id>``;
``KEYS[2..]`` is a variadic tail, passed as a list), then binds each to a local of that
name. :class:`Script` parses the header and checks that its two TypedDicts (``ClaimKeys``,
``ClaimArgs`` ...) name exactly those entries, in order; callers then write
``CLAIM.on(client)(keys={"record": ..., ...}, args={"token": ..., ...})``, mypy checks the
names, and the positional order is written down once, in the file.

A script that calls ``now_ms()`` gets ``lua/_now.lua`` put before it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import takewhile
from typing import Any, Generic, TypedDict, TypeVar, get_origin, get_type_hints

import redis
from redis.exceptions import NoScriptError

#: An ARGV value as redis-py sends it.
Arg = str | int | float

_ENTRY = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.)?\] ([a-z_][a-z0-9_]*): \S")
_PRELUDE = "_now"


class ScriptError(Exception):
    """A script file whose header, or whose Python signature, is inconsistent."""


def read(name: str) -> str:
    """The text of ``lua/<name>.lua``, package data (pyproject.toml ships it in the wheel)."""
    return resources.files("herald.store").joinpath("lua", f"{name}.lua").read_text("utf-8")


def _code(lines: Sequence[str]) -> list[str]:
    return [line for line in lines if line.strip() and not line.lstrip().startswith("--")]


def with_prelude(text: str) -> str:
    """``text``, with ``_now.lua`` before its first line if it calls ``now_ms()``."""
    if not any("now_ms(" in line for line in _code(text.splitlines())):
        return text
    # On the script's first line, so that Redis's "user_script:<line>" is the file's line.
    prelude = [line.strip() for line in _code(read(_PRELUDE).splitlines())]
    if any("--" in line for line in prelude):
        raise ScriptError(f"{_PRELUDE}.lua: a comment on a code line would hide the script")
    return " ".join(prelude) + " " + text


@dataclass(frozen=True)
class Slots:
    """The names of the KEYS or ARGV entries; with ``tail`` the last takes the rest."""

    names: tuple[str, ...]
    tail: bool = False

    def positional(self, given: Mapping[str, object], what: str) -> list[Any]:
        """The values of ``given`` in this order, a tail's list spread at the end."""
        if set(given) != set(self.names):
            raise TypeError(f"{what}: expected {list(self.names)}, got {list(given)}")
        values = [given[name] for name in self.names]
        if not self.tail:
            return values
        rest = values.pop()
        if not isinstance(rest, list | tuple):
            raise TypeError(f"{what}: {self.names[-1]} takes the rest, a list")
        return values + list(rest)


@dataclass(frozen=True)
class Header:
    """What a script's header says: one summary line, then its KEYS and ARGV."""

    summary: str
    keys: Slots
    args: Slots


def parse_header(name: str, text: str) -> Header:
    """The header of the script ``name``: its leading ``--`` lines."""
    lines = list(takewhile(lambda line: line.startswith("--"), text.splitlines()))
    found: dict[str, list[str]] = {"KEYS": [], "ARGV": []}
    tails: dict[str, bool] = {"KEYS": False, "ARGV": False}
    for line in lines:
        match = _ENTRY.match(line)
        if not match:
            continue
        kind, index, tail, local = match.groups()
        if tails[kind] or int(index) != len(found[kind]) + 1:
            raise ScriptError(f"{name}.lua: {kind}[{index}] out of order")
        found[kind].append(local)
        tails[kind] = bool(tail)
    summary = lines[0].removeprefix("--").strip() if lines else ""
    if not summary or _ENTRY.match(lines[0]):
        raise ScriptError(f"{name}.lua: the header must open with what the script does")
    keys = Slots(tuple(found["KEYS"]), tails["KEYS"])
    return Header(summary, keys, Slots(tuple(found["ARGV"]), tails["ARGV"]))


K = TypeVar("K", bound=Mapping[str, object])
A = TypeVar("A", bound=Mapping[str, object])


def _check(name: str, kind: str, slots: Slots, typed: type[Mapping[str, object]]) -> None:
    """The TypedDict ``typed`` names the header's entries in order; only a tail is a list."""
    hints = get_type_hints(typed)
    if tuple(hints) != slots.names:
        raise ScriptError(f"{name}.lua {kind}: header {list(slots.names)}, Python {list(hints)}")
    for position, (field, hint) in enumerate(hints.items()):
        is_tail = slots.tail and position == len(hints) - 1
        if (get_origin(hint) is Sequence) != is_tail:
            expected = "a Sequence (the tail)" if is_tail else "one value"
            raise ScriptError(f"{name}.lua {kind}: {field} must be {expected}")


class Script(Generic[K, A]):
    """One script file: its source, its header, and its KEYS and ARGV as TypedDicts."""

    def __init__(self, name: str, keys: type[K], args: type[A]) -> None:
        text = read(name)
        self.name = name
        self.header = parse_header(name, text)
        self.source = with_prelude(text)
        #: The SHA1 Redis knows the script by (EVALSHA).
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()
        _check(name, "KEYS", self.header.keys, keys)
        _check(name, "ARGV", self.header.args, args)
        self.key_type, self.arg_type = keys, args

    def positional(self, keys: K, args: A) -> tuple[list[Any], list[Any]]:
        """KEYS and ARGV as Redis takes them, from their values by name."""
        return (
            self.header.keys.positional(keys, f"{self.name}.lua KEYS"),
            self.header.args.positional(args, f"{self.name}.lua ARGV"),
        )

    def batch(self, batch: Batch, *, keys: K, args: A) -> None:
        """Add a call of this script to ``batch``."""
        batch.script(self, *self.positional(keys, args))

    def on(self, client: redis.Redis) -> Registered[K, A]:
        """This script registered on ``client`` (EVALSHA, loaded on first use)."""
        return Registered(self, client)


class Registered(Generic[K, A]):
    """A script registered on a client; call it with its KEYS and ARGV by name."""

    def __init__(self, script: Script[K, A], client: redis.Redis) -> None:
        self.script = script
        self._lua = client.register_script(script.source)

    def __call__(self, *, keys: K, args: A, client: redis.Redis | None = None) -> Any:
        """Run the script (on ``client``, e.g. a pipeline, when given)."""
        positional_keys, positional_args = self.script.positional(keys, args)
        return self._lua(keys=positional_keys, args=positional_args, client=client)


class Batch:
    """Scripts and commands sent in one round trip.

    A redis-py pipeline that runs a script asks ``SCRIPT EXISTS`` first, on every execute:
    a second round trip. A batch sends each script by ``EVALSHA`` alone; only when the
    server answers NOSCRIPT (a restarted or new Redis) are the scripts loaded and those
    calls sent again, in their order.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._calls: list[tuple[Script[Any, Any] | None, tuple[Any, ...]]] = []

    def script(self, script: Script[Any, Any], keys: Sequence[Any], args: Sequence[Any]) -> None:
        """Add a call of ``script`` with positional KEYS and ARGV (see :meth:`Script.batch`)."""
        self._calls.append((script, (len(keys), *keys, *args)))

    def command(self, *args: Arg) -> None:
        """Add a plain command (``"SET", key, value, "EX", 60``)."""
        self._calls.append((None, args))

    def __len__(self) -> int:
        return len(self._calls)

    def execute(self, *, raise_on_error: bool = True) -> list[Any]:
        """Send every call; their replies, in order (an error reply raises, unless
        ``raise_on_error`` is False: then it is returned in its place)."""
        replies = self._send(range(len(self._calls)))
        missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        if missing:
            for script in {id(s): s for s, _ in self._calls if s is not None}.values():
                self.client.script_load(script.source)
            for i, reply in zip(missing, self._send(missing), strict=True):
                replies[i] = reply
        if not raise_on_error:
            return replies
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _send(self, indexes: Sequence[int]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for i in indexes:
            script, args = self._calls[i]
            if script is None:
                pipe.execute_command(*args)  # type: ignore[no-untyped-call]
            else:
                pipe.execute_command("EVALSHA", script.sha, *args)  # type: ignore[no-untyped-call]
        return list(pipe.execute(raise_on_error=False))


# -- the scripts and their KEYS and ARGV, as their headers name them ----------------------


class RecordKeys(TypedDict):
    record: str
    due: str


class RecordArgs(TypedDict):
    job_id: str
    payload: str
    queue: str
    margin_ms: int
    retention_s: int


class ClaimKeys(TypedDict):
    record: str
    lease: str
    stats: str
    due: str
    watermark: str


class ClaimArgs(TypedDict):
    token: str
    lease_s: int
    retention_s: int
    now: str
    job_id: str
    payload: str
    queue: str
    expires: str


class ProgressKeys(TypedDict):
    record: str
    lease: str
    due: str


class ProgressArgs(TypedDict):
    token: str
    attempts: int
    parts: str
    lease_s: int
    job_id: str


class RetryKeys(TypedDict):
    record: str
    lease: str
    due: str


class RetryArgs(TypedDict):
    token: str
    attempts: int
    parts: str
    after_ms: int
    job_id: str


class FinishKeys(TypedDict):
    record: str
    lease: str
    events: str
    due: str


class FinishArgs(TypedDict):
    token: str
    outcome: str
    attempts: int
    parts: str
    retention_s: int
    job_id: str
    event: str
    entry_job_id: str
    data: str
    keep_ms: int


class InteractionKeys(TypedDict):
    interactions: str


class InteractionArgs(TypedDict):
    channel_id: str
    at_ms: int
    interaction: str


class SentKeys(TypedDict):
    message: str
    sent: str
    statuses: str


class SentArgs(TypedDict):
    job_id: str
    message_id: str
    keep_ms: int


class StatusKeys(TypedDict):
    message: str
    statuses: str


class StatusArgs(TypedDict):
    rank: int
    event: str
    data: str
    job_hint: str
    keep_ms: int
    wait_ms: int


class InboundKeys(TypedDict):
    seen: str
    inbound: str


class InboundArgs(TypedDict):
    event: str
    data: str
    keep_ms: int


class SweepKeys(TypedDict):
    due: str
    watermark: str
    queue: str
    jobs: Sequence[str]


class SweepArgs(TypedDict):
    margin_ms: int
    slack_ms: int
    redis_broker: str
    ids: Sequence[Arg]


class QueuedKeys(TypedDict):
    due: str
    records: Sequence[str]


class QueuedArgs(TypedDict):
    margin_ms: int
    redis_broker: str
    entries: Sequence[Arg]


class GcraKeys(TypedDict):
    buckets: Sequence[str]


class GcraArgs(TypedDict):
    limits: Sequence[Arg]


class TakeKeys(TypedDict):
    lists: Sequence[str]


class TakeArgs(TypedDict):
    count: int


class FileDeleteKeys(TypedDict):
    meta: str
    index: str
    used: str
    chunks: Sequence[str]


class FileDeleteArgs(TypedDict):
    file_id: str


class FileUnlockKeys(TypedDict):
    lock: str


class FileUnlockArgs(TypedDict):
    token: str


RECORD = Script("record", RecordKeys, RecordArgs)
CLAIM = Script("claim", ClaimKeys, ClaimArgs)
PROGRESS = Script("progress", ProgressKeys, ProgressArgs)
RETRY = Script("retry", RetryKeys, RetryArgs)
FINISH = Script("finish", FinishKeys, FinishArgs)
INTERACTION = Script("interaction", InteractionKeys, InteractionArgs)
SENT = Script("sent", SentKeys, SentArgs)
STATUS = Script("status", StatusKeys, StatusArgs)
INBOUND = Script("inbound", InboundKeys, InboundArgs)
SWEEP = Script("sweep", SweepKeys, SweepArgs)
QUEUED = Script("queued", QueuedKeys, QueuedArgs)
GCRA = Script("gcra", GcraKeys, GcraArgs)
TAKE = Script("take", TakeKeys, TakeArgs)
FILE_DELETE = Script("file_delete", FileDeleteKeys, FileDeleteArgs)
FILE_UNLOCK = Script("file_unlock", FileUnlockKeys, FileUnlockArgs)

#: Every script, by file name.
SCRIPTS: Mapping[str, Script[Any, Any]] = {
    s.name: s
    for s in (
        RECORD,
        CLAIM,
        PROGRESS,
        RETRY,
        FINISH,
        INTERACTION,
        SENT,
        STATUS,
        INBOUND,
        SWEEP,
        QUEUED,
        GCRA,
        TAKE,
        FILE_DELETE,
        FILE_UNLOCK,
    )
}
