"""The deployment files: docker-compose.yml follows the Compose specification and keeps the
properties Herald's delivery guarantees lean on; the Dockerfile runs ``herald worker``,
installs pinned dependencies before the code (a cached layer), and checks its health with
``herald ping``; pyproject.toml's ranges have upper bounds and constraints.txt pins them.

No Docker engine runs here, so the compose file is checked against the Compose
specification's JSON schema (check-jsonschema's vendored copy) and its facts are read
from the parsed YAML.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CONSTRAINTS = ROOT / "constraints.txt"
PYPROJECT = ROOT / "pyproject.toml"


def check_jsonschema() -> list[str]:
    """The check-jsonschema command of this interpreter's environment."""
    if importlib.util.find_spec("check_jsonschema") is not None:
        return [sys.executable, "-m", "check_jsonschema"]
    script = Path(sys.executable).with_name("check-jsonschema")
    assert script.exists(), "check-jsonschema is not installed (pip install -e .[test])"
    return [str(script)]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    """Validate ``path`` against the Compose specification."""
    return subprocess.run(
        [*check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load_yaml(text: str) -> Any:
    """Parse YAML as Compose does (merge keys resolved)."""
    return YAML(typ="safe", pure=True).load(text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = load_yaml(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def seconds(duration: str) -> float:
    """A Compose duration (``90s``, ``1m30s``, ``2m``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    logical = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def test_compose_file_follows_the_compose_specification() -> None:
    result = validate(COMPOSE)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("where", "value", "why"),
    [
        (("services", "flower", "ports"), 5555, "ports must be a list"),
        (("workers",), {"replicas": 3}, "unknown top-level key"),
        (
            ("services", "worker", "depends_on", "redis", "condition"),
            "service_ready",
            "no such condition",
        ),
        (("services", "worker", "stop_grace_period"), ["90s"], "a duration is a string"),
    ],
)
def test_a_broken_compose_file_fails_validation(
    compose: dict[str, Any], tmp_path: Path, where: tuple[str, ...], value: Any, why: str
) -> None:
    # Given a copy of the compose file with one mistake (JSON is valid YAML)
    broken = json.loads(json.dumps(compose))
    parent = broken
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    path = tmp_path / "docker-compose.yml"
    path.write_text(json.dumps(broken, indent=2), encoding="utf-8")

    # When it is validated
    result = validate(path)

    # Then the validator refuses it
    assert result.returncode != 0, f"{why}: accepted\n{result.stdout}"


def test_the_unbroken_copy_passes(compose: dict[str, Any], tmp_path: Path) -> None:
    # The round trip through JSON alone must not be what makes the copies above fail.
    path = tmp_path / "docker-compose.yml"
    path.write_text(json.dumps(compose, indent=2), encoding="utf-8")

    result = validate(path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_workers_scale(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]

    # `docker compose up --scale worker=N` needs no fixed name and no fixed host port.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "build" in worker
    assert worker["environment"]["HERALD_BROKER_URL"] == "redis://redis:6379/0"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["restart"] == "unless-stopped"


def test_worker_gets_the_channels_file_read_only_and_secrets_from_the_environment(
    compose: dict[str, Any],
) -> None:
    worker = compose["services"]["worker"]

    [mount] = [v for v in worker["volumes"] if v["target"] == "/etc/herald/channels.toml"]
    assert mount["source"] == "./channels.toml"
    assert mount["read_only"] is True
    # Passed through, never written here: a value in the file would be a leaked secret.
    assert worker["environment"]["WA_TOKEN"] in (None, "${WA_TOKEN}", "${WA_TOKEN:-}")


def test_worker_stop_grace_outlasts_the_soft_shutdown(compose: dict[str, Any]) -> None:
    # Docker SIGKILLs after the grace period; the worker's soft shutdown (finish the sends
    # in hand, hand back unacked and countdown messages) must be over by then.
    from herald.config import Settings
    from herald.worker import celery_config

    config = celery_config(Settings(broker_url="redis://redis:6379/0"))
    grace = seconds(compose["services"]["worker"]["stop_grace_period"])

    assert grace > config["worker_soft_shutdown_timeout"] + 10


def test_redis_keeps_every_job_across_a_restart(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]

    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_flower_publishes_5555_on_loopback_only_behind_basic_auth(compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]

    # Flower can enqueue and revoke tasks: never on the host's public addresses.
    assert [str(p) for p in flower["ports"]] == ["127.0.0.1:5555:5555"]
    assert flower["command"][:4] == ["celery", "-A", "herald.worker", "flower"]
    # `${VAR:?message}`: Compose refuses to start anything while the password is unset.
    assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH:\?.+\}", flower["environment"]["FLOWER_BASIC_AUTH"])


def test_the_worker_gets_every_secret_the_docs_channels_files_name(
    compose: dict[str, Any],
) -> None:
    # A channels file copied from the README or a channel's page must start as it is: each
    # ${NAME} it references has to reach the worker container.
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    named = {
        name
        for page in pages
        for name in re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", page.read_text(encoding="utf-8"))
    } - {"NAME"}
    environment = compose["services"]["worker"]["environment"]

    assert named <= set(environment), sorted(named - set(environment))
    for name in named:  # passed through, never given a value here
        assert environment[name] is None, name


def test_dockerfile_runs_herald_worker_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    last = {keyword: args for keyword, args in instructions}

    assert json.loads(last["CMD"]) == ["herald", "worker"]
    assert last["FROM"] == "python:3.11-slim"
    assert last["USER"] not in ("root", "0")
    assert last["STOPSIGNAL"] == "SIGTERM"
    assert "HERALD_CHANNELS_FILE=/etc/herald/channels.toml" in " ".join(
        args for keyword, args in instructions if keyword == "ENV"
    )


def test_dockerfile_health_check_is_herald_ping_of_this_worker() -> None:
    check = dict(dockerfile_instructions())["HEALTHCHECK"]

    assert 'CMD herald ping --worker "celery@$HOSTNAME"' in check
    assert seconds(re.search(r"--timeout=(\S+)", check)[1]) > 10  # type: ignore[index]


def test_dockerfile_installs_pinned_dependencies_before_the_code() -> None:
    instructions = dockerfile_instructions()
    copies = [(i, args) for i, (kw, args) in enumerate(instructions) if kw == "COPY"]
    runs = [(i, args) for i, (kw, args) in enumerate(instructions) if kw == "RUN"]
    [deps] = [i for i, args in runs if "-c constraints.txt" in args]
    [package] = [i for i, args in runs if "pip install --no-cache-dir --no-deps ." in args]
    code = [i for i, args in copies if "herald" in args.split()[:-1]]

    # The dependency layer is built from pyproject.toml and constraints.txt alone, so
    # a change to the code reuses it; the whole tree is never copied.
    assert all(args.split()[-1] != "." or "." not in args.split()[:-1] for _, args in copies)
    assert [args for i, args in copies if i < deps] == ["pyproject.toml constraints.txt ./"]
    assert code and deps < min(code) < package
    assert "[flower]" not in instructions[deps][1]  # the extra comes from pyproject.toml
    assert "optional-dependencies']['flower']" in instructions[deps][1]
    assert "pip check" in instructions[package][1]


def test_dockerignore_keeps_what_the_image_copies() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    needed = {"pyproject.toml", "constraints.txt", "README.md", "herald"}
    assert not needed & ignored
    assert {".venv", ".env", "channels.toml", "tests", "examples"} <= ignored


def project() -> dict[str, Any]:
    doc = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    project: dict[str, Any] = doc["project"]
    return project


def requirements() -> list[Requirement]:
    """pyproject.toml's dependencies and those of every extra."""
    found = project()
    extras = [r for group in found["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*found["dependencies"], *extras]]


def pins() -> dict[str, str]:
    """constraints.txt as {canonical name: version}; every line must be name==version."""
    found = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[A-Za-z0-9_.-]+", name) and version.strip(), line
        found[canonicalize_name(name)] = version.strip()
    return found


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_every_dependency_range_stops_before_the_next_major(requirement: Requirement) -> None:
    uppers = [s for s in requirement.specifier if s.operator in ("<", "<=", "==", "~=")]
    lowers = [s for s in requirement.specifier if s.operator in (">=", ">", "==", "~=")]

    assert uppers and lowers, f"{requirement}: give it a lower and an upper bound"


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_constraints_pin_every_dependency_inside_its_range(requirement: Requirement) -> None:
    pinned = pins().get(canonicalize_name(requirement.name))

    assert pinned is not None, f"{requirement.name} is not in constraints.txt"
    assert requirement.specifier.contains(pinned, prereleases=True), (requirement, pinned)
