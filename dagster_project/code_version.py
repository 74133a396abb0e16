"""An asset's code version: a hash of the source it runs, so Dagster marks it stale once that code changes.

A definitions module's source is hashed together with the modules it imports, followed
transitively through the packages that compute what assets write (`COMPUTING_PACKAGES`: the
science, the warehouse helpers, privacy, ingest, quality, review, tracking, webhooks). Plumbing
that does not change what an asset writes (paths, partitions, metadata, run config, resources,
other definitions modules) is not followed, so editing it does not mark every asset stale.
Imports are read from the source text, nothing is imported: the same files give the same
version in every process and on every machine. Files are read and parsed once per process
(loading the definitions asks for a version ~20 times over the same ~25 files); the parse is
cached by source text, so a changed source is parsed afresh.
"""

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "dagster_project"
PACKAGE_DIR = Path(__file__).resolve().parent
COMPUTING_PACKAGES = tuple(
    f"{PACKAGE}.{name}"
    for name in ("science", "warehouse", "privacy", "ingest", "quality", "review", "tracking", "webhooks")
)


def module_path(name: str) -> Path:
    """The file of a `dagster_project` module or package (which may not exist)."""
    relative = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    return relative / "__init__.py" if relative.is_dir() else relative.with_suffix(".py")


def module_source(name: str) -> str:
    return _read_module(name)


@functools.cache
def _read_module(name: str) -> str:
    path = module_path(name)
    if not path.is_file():
        raise ValueError(f"{name} is not a module of {PACKAGE} (no {path})")
    return path.read_text(encoding="utf-8")


@functools.cache
def imported_modules(source: str) -> frozenset[str]:
    """The `dagster_project` modules a source imports anywhere in its code, `from package import module` included."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise ValueError(f"relative import from {node.module!r}: use absolute imports of {PACKAGE}")
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(name for name in names if name.split(".")[0] == PACKAGE and module_path(name).is_file())


def _computes(name: str) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in COMPUTING_PACKAGES)


def hashed_modules(root: str) -> list[str]:
    """`root` and the computing modules it imports, directly or through each other, sorted."""
    seen, pending = {root}, [root]
    while pending:
        for name in imported_modules(module_source(pending.pop())):
            if name not in seen and _computes(name):
                seen.add(name)
                pending.append(name)
    return sorted(seen)


def code_version(root: str) -> str:
    """12 hex digits of the SHA-256 of every hashed module's name and source."""
    digest = hashlib.sha256()
    for name in hashed_modules(root):
        digest.update(f"{name}\0{module_source(name)}\0".encode())
    return digest.hexdigest()[:12]
