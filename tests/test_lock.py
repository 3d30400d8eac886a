"""The Docker image is reproducible: it installs the pinned `requirements.lock`, which covers
every runtime dependency of the project and theirs, for the image's platform (CPython 3.11 on
Linux), at versions the project accepts. (No Docker engine is needed to check this.)"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# The image's interpreter and platform (python:3.11-slim).
IMAGE = {
    **default_environment(),
    "python_version": "3.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
    "extra": "",
}


def locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def applies(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(IMAGE)


def test_the_dockerfile_installs_the_lock_and_nothing_else() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    text = "\n".join(lines)
    assert "COPY requirements.lock" in text
    assert re.search(r"pip install [^\n]*-r requirements\.lock", text)
    installs = [line for line in lines if "pip install" in line]
    # The project itself goes in without resolving dependencies again.
    project = [line for line in installs if "requirements.lock" not in line]
    assert project, installs
    assert all("--no-deps" in line for line in project), project


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    pins = locked()
    for requirement in runtime_requirements():
        if not applies(requirement):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{requirement.name}=={pins[name]} is outside {requirement.specifier}"
        )


def test_the_lock_is_closed_under_the_dependencies_of_what_it_pins() -> None:
    """Every dependency of every pinned package (as installed here) is pinned too."""
    pins = locked()
    missing: set[str] = set()
    for name in pins:
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # (not installed in this environment: its own pins are checked by pip)
        for text in requires:
            requirement = Requirement(text)
            if applies(requirement) and canonicalize_name(requirement.name) not in pins:
                missing.add(f"{requirement.name} (needed by {name})")
    assert not missing, sorted(missing)
