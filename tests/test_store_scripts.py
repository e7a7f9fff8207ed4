"""The Lua scripts: each header names every KEYS and ARGV entry the script reads, each entry
is bound to a local of its name at the top, and the Python wrappers pass exactly those names."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any, TypedDict, get_type_hints

import pytest
import redis

from herald.store import scripts
from herald.store.scripts import CLAIM, GCRA, QUEUED, SCRIPTS, Script, ScriptError

LUA = Path(scripts.__file__).parent / "lua"
ROOT = Path(__file__).resolve().parents[1]
ENTRY = re.compile(r"^-- (KEYS|ARGV)\[(\d+)(\.\.)?\] (\w+): \S")
USE = re.compile(r"(#?)\b(KEYS|ARGV)\b(\[(\d+)\])?")
BINDING = re.compile(r"^local (\w+) = ")
CITATION = re.compile(r"docs/[\w./-]+\.md(?:#[\w-]+)?")


def parts(text: str) -> tuple[list[str], list[str], list[str]]:
    """A script file as its header, its prologue (the first code block) and the rest."""
    lines = text.splitlines()
    size = next(i for i, line in enumerate(lines) if not line.startswith("--"))
    rest = lines[size:]
    while rest and not rest[0].strip():
        rest.pop(0)
    end = rest.index("") if "" in rest else len(rest)
    return lines[:size], rest[:end], rest[end:]


def entries(header: list[str]) -> dict[str, list[tuple[str, bool]]]:
    """KEYS and ARGV as the header names them: (name, is the variadic tail), in order."""
    found: dict[str, list[tuple[str, bool]]] = {"KEYS": [], "ARGV": []}
    for line in header:
        match = ENTRY.match(line)
        if match:
            kind, index, tail, name = match.groups()
            assert int(index) == len(found[kind]) + 1, line
            assert not any(t for _, t in found[kind]), f"{line}: after the tail"
            found[kind].append((name, bool(tail)))
    return found


def script_files() -> list[Path]:
    return sorted(p for p in LUA.glob("*.lua") if not p.name.startswith("_"))


def test_every_script_file_is_loaded_once() -> None:
    assert sorted(SCRIPTS) == [p.stem for p in script_files()]


@pytest.mark.parametrize("path", script_files(), ids=lambda p: p.stem)
def test_the_header_names_every_entry_and_the_prologue_binds_it(path: Path) -> None:
    header, prologue, body = parts(path.read_text())
    assert not ENTRY.match(header[0]) and header[0].removeprefix("--").strip(), "what it does"
    named = entries(header)
    for kind, slots in named.items():
        names = [name for name, _ in slots]
        tail = bool(slots) and slots[-1][1]
        bound = {m[1] for line in prologue if (m := BINDING.match(line))}
        assert set(names) <= bound, f"{kind} not bound to locals of their names: {names}"
        for line in prologue:
            for sharp, used, _, index in USE.findall(line):
                if used != kind:
                    continue
                if index and not sharp:
                    # A fixed entry: read once, into the local of the header's name.
                    position = int(index)
                    assert position <= len(slots) and not slots[position - 1][1], line
                    assert BINDING.match(line) and BINDING.match(line)[1] == names[position - 1]
                else:
                    assert tail, f"{line}: {kind} read as a list without a tail in the header"
    for line in body:
        assert not USE.search(line), f"{path.name}: {line!r} reads KEYS/ARGV past the top"
    assert all(len(line) <= 100 for line in header + prologue + body)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_python_wrappers_pass_exactly_the_header_names(name: str) -> None:
    script = SCRIPTS[name]
    named = entries(parts((LUA / f"{name}.lua").read_text())[0])
    assert list(get_type_hints(script.key_type)) == [n for n, _ in named["KEYS"]]
    assert list(get_type_hints(script.arg_type)) == [n for n, _ in named["ARGV"]]


def test_arguments_are_placed_by_name_in_the_header_order() -> None:
    keys, args = CLAIM.positional(
        {"watermark": "w", "due": "d", "stats": "s", "lease": "l", "record": "r"},
        {
            "expires": "e",
            "queue": "q",
            "payload": "p",
            "job_id": "j",
            "now": "n",
            "retention_s": 60,
            "lease_s": 10,
            "token": "t",
        },
    )
    assert keys == ["r", "l", "s", "d", "w"]
    assert args == ["t", 10, 60, "n", "j", "p", "q", "e"]
    keys, args = QUEUED.positional(
        {"due": "d", "records": ["a", "b"]},
        {"margin_ms": 5, "redis_broker": "1", "entries": ["a", 7, "b", 8]},
    )
    assert (keys, args) == (["d", "a", "b"], [5, "1", "a", 7, "b", 8])


def test_a_wrong_name_is_refused_before_redis_sees_it() -> None:
    bad: Any = {"buckets": ["b"], "extra": "x"}
    with pytest.raises(TypeError, match="expected"):
        GCRA.positional(bad, {"limits": [1, 0]})
    with pytest.raises(TypeError, match="a list"):
        GCRA.positional({"buckets": "b"}, {"limits": [1, 0]})


def test_python_names_that_differ_from_the_header_are_refused() -> None:
    class Keys(TypedDict):
        record: str
        lock: str

    class Args(TypedDict):
        token: str

    with pytest.raises(ScriptError, match="header"):
        Script("progress", Keys, Args)


def test_an_out_of_order_header_is_refused() -> None:
    text = "-- x: y\n-- KEYS[2] b: c\nreturn 1\n"
    with pytest.raises(ScriptError, match="out of order"):
        scripts.parse_header("x", text)


def test_the_clock_prelude_keeps_line_numbers(rclient: redis.Redis[Any]) -> None:
    source = scripts.with_prelude("-- x: a broken script\nlocal now = now_ms()\nreturn nope.x\n")
    assert source.count("\n") == 3
    with pytest.raises(redis.ResponseError, match="user_script:3"):
        rclient.eval(source, 0)
    assert scripts.with_prelude("return 1") == "return 1"
    assert float(rclient.eval(scripts.with_prelude("return now_ms()"), 0)) > 1.7e12


def headings(doc: Path) -> set[str]:
    """The anchors GitHub makes of a doc's headings."""
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    titles = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", t.strip().lower()).replace(" ", "-") for t in titles}


@pytest.mark.parametrize("path", sorted(LUA.glob("*.lua")), ids=lambda p: p.stem)
def test_the_scripts_cite_docs_that_exist(path: Path) -> None:
    for cited in CITATION.findall(path.read_text()):
        file, _, anchor = cited.partition("#")
        assert (ROOT / file).is_file(), cited
        assert not anchor or anchor in headings(ROOT / file), cited


def test_a_batch_loads_its_scripts_when_redis_does_not_have_them(
    rclient: redis.Redis[Any],
) -> None:
    # Given a Redis that has forgotten every script (a restart, a failover)
    from herald.store.scripts import INBOUND, Batch

    rclient.script_flush()
    seen, stream = f"test:seen:{uuid.uuid4().hex}", f"test:stream:{uuid.uuid4().hex}"
    batch = Batch(rclient)
    batch.command("SET", f"{seen}:before", "1")
    for _ in range(2):
        INBOUND.batch(
            batch,
            keys={"seen": seen, "inbound": stream},
            args={"event": "message.received", "data": "{}", "keep_ms": 60_000},
        )

    # When it runs: one pipeline; the NOSCRIPT calls loaded and sent again, in order
    replies = batch.execute()

    # Then every reply is the one a loaded script gives, and nothing ran twice
    assert replies[0] in (True, "OK")
    assert replies[1] and replies[2] is None
    assert rclient.xlen(stream) == 1
