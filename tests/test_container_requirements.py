"""The image's packages: requirements-server.in, uv's lock of it, and what they weigh."""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from mlprod import container
from mlprod.container import canonical

ROOT = Path(__file__).resolve().parent.parent
# The image's interpreter and platform (Debian bookworm's CPython 3.11, or the official slim one).
IMAGE = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
         "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
         "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def metadata_closure(roots) -> set[str]:
    """Follow installed packages' requirements (extras honoured) from ``roots``; return names."""
    seen: dict[str, set[str]] = {}
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        if name in seen and set(req.extras) <= seen[name]:
            continue
        seen.setdefault(name, set()).update(req.extras)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            extras = seen[name] | {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return set(seen)


def imported_distributions(package: Path) -> set[str]:
    """Return the distributions that the modules of ``package`` import (outside the stdlib)."""
    modules = set()
    for file in package.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"__future__", package.name}
    owners = metadata.packages_distributions()
    return {canonical(owners[m][0]) for m in modules}


def pins_for(lock: Path, env: dict[str, str]) -> set[tuple[str, str]]:
    """Return ``(name, version)`` of a lock's lines whose marker holds in ``env``."""
    found = set()
    for pin in container.read_lock(lock):
        requirement, _, marker = pin.line.partition(";")
        if not marker or Marker(marker).evaluate(env):
            found.add((pin.name, requirement.split("==")[1].strip()))
    return found


def test_server_dependencies_are_what_the_server_imports_plus_uvicorns_loop_and_parser():
    direct = {canonical(r) for r in container.server_dependencies()}
    assert direct - {"uvloop", "httptools"} == imported_distributions(ROOT / "server")
    # The server asks uvicorn for these by name; uvicorn[standard] would add four unused packages.
    source = "\n".join(p.read_text() for p in (ROOT / "server").rglob("*.py"))
    assert '"loop": "uvloop"' in source and "httptools_impl" in source
    assert {"uvloop", "httptools"} <= direct
    assert not any("[" in r for r in container.server_dependencies())


def test_server_lock_is_the_closure_of_the_direct_requirements_as_installed():
    here = {name for name, _ in pins_for(container.SERVER_LOCK, {})}
    assert here == metadata_closure(container.server_dependencies())


def test_server_lock_pins_what_the_course_lock_pins_for_the_image():
    server, course = pins_for(container.SERVER_LOCK, IMAGE), pins_for(container.LOCK, IMAGE)
    assert server <= course, f"run `make lock`: {sorted(server - course)} differ"
    lines = container.SERVER_LOCK.read_text().splitlines()
    command = "-c requirements.lock requirements-server.in -o requirements-server.lock"
    assert "uv pip compile" in lines[1] and command in lines[1], "not written by `make lock`"
    assert command in (ROOT / "Makefile").read_text()


def test_server_lock_keeps_markers_and_nothing_of_training_jupyter_or_unused_extras():
    lines = container.server_requirements()
    assert lines == sorted(lines, key=str.lower)
    assert any(";" in line for line in lines), "environment markers were dropped"
    names = {canonical(line.split("==")[0]) for line in lines}
    assert {"onnxruntime", "starlette", "uvicorn", "uvloop", "httptools", "orjson",
            "prometheus-client"} <= names
    assert not names & {"scikit-learn", "pandas", "skl2onnx", "jupyterlab", "ipykernel",
                        "notebook", "matplotlib", "dask",
                        "watchfiles", "websockets", "python-dotenv", "pyyaml"}
    assert not any(n.startswith("jupyter") for n in names)


def test_read_lock_follows_via_lists_and_leaves_out_files(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\na==1\n    # via -r requirements-server.in\n"
                    "b==2 ; sys_platform == 'linux'\n    # via\n    #   -c requirements.lock\n"
                    "    #   a\n    #   z (pyproject.toml)\nc==3\n    # via b\n")
    assert [(p.name, p.line, set(p.via)) for p in container.read_lock(lock)] == [
        ("a", "a==1", set()), ("b", "b==2 ; sys_platform == 'linux'", {"a", "z"}),
        ("c", "c==3", {"b"})]
    assert container.server_requirements(lock) == ["a==1", "b==2 ; sys_platform == 'linux'",
                                                    "c==3"]


def test_missing_files_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="make lock"):
        container.server_requirements(tmp_path / "absent.lock")
    with pytest.raises(FileNotFoundError, match="what server/ imports"):
        container.server_dependencies(tmp_path / "absent.in")


def test_installed_sizes_count_each_packages_files():
    import onnxruntime

    library = max(Path(onnxruntime.__file__).parent.rglob("*.so*"), key=lambda p: p.stat().st_size)
    sizes = container.installed_sizes(["onnxruntime", "orjson", "no-such-package"])
    assert set(sizes) == {"onnxruntime", "orjson"}
    assert sizes["onnxruntime"] > library.stat().st_size / 1e6 > 1
    assert container.installed_megabytes(["onnxruntime", "orjson"]) == \
        pytest.approx(sum(sizes.values()))
    assert container.installed_megabytes() > sum(sizes.values())
