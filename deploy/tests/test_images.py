"""The images are reproducible and hold only what runs: each installs its lock file (every package pinned,
each with its hashes, in step with the requirements it was made from), ships no tests, and runs as a user who
cannot change the code. (There is no Docker engine here: the Dockerfiles are checked as written.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

IMAGES = {  # image folder -> what the service's user may write
    "whatsapp-gateway": ["logs"],
    "ai-agent-service": ["logs", "knowledge_base/.cache"],
    "sandbox": [],
}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(?P<version>\S+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line.strip()):
            found[canonical(match["name"])] = match["version"]
    return found


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a `uv pip compile --generate-hashes` file."""
    found: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            current = canonical(match["name"])
            found[current] = (match["version"], 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


@pytest.mark.parametrize("folder", IMAGES)
def test_each_lock_pins_what_its_requirements_ask_and_every_package_has_hashes(folder):
    lock = locked(ROOT / folder / "requirements.lock")
    dev_lock = locked(ROOT / "requirements-dev.lock")
    asked = pins(ROOT / folder / "requirements.txt")

    # A requirement changed without `make lock` shows here.
    assert {name: lock.get(name, ("missing", 0))[0] for name in asked} == asked
    assert {name: dev_lock.get(name, ("missing", 0))[0] for name in asked} == asked
    assert all(hashes for _, hashes in lock.values())


def test_the_dev_lock_holds_the_dev_tools_with_hashes():
    dev_lock = locked(ROOT / "requirements-dev.lock")
    asked = pins(ROOT / "requirements-dev.txt")

    assert {name: dev_lock.get(name, ("missing", 0))[0] for name in asked} == asked
    assert all(hashes for _, hashes in dev_lock.values())


@pytest.mark.parametrize("folder", IMAGES)
def test_each_image_installs_its_lock_with_hashes_checked(folder):
    dockerfile = (ROOT / folder / "Dockerfile").read_text(encoding="utf-8")

    assert f"COPY {folder}/requirements.lock /tmp/requirements.lock" in dockerfile
    assert "RUN pip install --require-hashes -r /tmp/requirements.lock" in dockerfile
    assert "requirements.txt" not in dockerfile and "pip install /" not in dockerfile


def test_no_image_ships_tests_env_files_or_logs():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()

    assert {"**/tests", "**/.env", "**/logs", "e2e", "bench"} <= set(ignored)


@pytest.mark.parametrize(("folder", "writable"), IMAGES.items())
def test_each_image_runs_as_a_user_who_can_write_only_its_logs_and_caches(folder, writable):
    lines = (ROOT / folder / "Dockerfile").read_text(encoding="utf-8").splitlines()
    user = next(line for line in reversed(lines) if line.startswith("USER "))
    chowns = [line for line in lines if "chown" in line]

    assert user.split()[1] not in ("root", "0")
    assert lines.index(user) > max(i for i, line in enumerate(lines) if line.startswith("COPY "))
    assert not any("-R" in line for line in chowns)
    assert sorted(path for line in chowns for path in line.split("chown", 1)[1].split()[1:]) == sorted(
        writable
    )
