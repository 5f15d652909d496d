"""A digest of the package code a script runs, so Snakemake re-runs a step when it changes.

Snakemake's code trigger sees only a script's own file. Rules pass this digest as a param: it
covers the script and every `filterlens` module it imports, directly or through other modules,
and the files a module ships under `assets/<module>/` (the explorer's page, for example).
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "filterlens"


def imported_modules(source: str, inside_package: bool) -> set[str]:
    """Names of the package modules that `source` imports (relative imports inside the package)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name.split(".")[1])
        elif isinstance(node, ast.ImportFrom):
            absolute = node.level == 0 and node.module and node.module.split(".")[0] == PACKAGE
            relative = inside_package and node.level == 1
            if not (absolute or relative):
                continue
            parts = (node.module or "").split(".")
            sub = parts[1:] if absolute else parts
            if sub and sub[0]:
                found.add(sub[0])
            else:  # from filterlens import a, b  /  from . import a
                found.update(alias.name for alias in node.names)
    return found


def modules_used(script: Path, package_dir: Path) -> list[Path]:
    """The package files `script` depends on, transitively, with their modules' assets, sorted."""
    todo = imported_modules(Path(script).read_text(), inside_package=False)
    done: set[str] = set()
    while todo:
        name = todo.pop()
        file = package_dir / f"{name}.py"
        if name in done or not file.exists():
            continue
        done.add(name)
        todo |= imported_modules(file.read_text(), inside_package=True)
    assets = [f for n in done for f in (package_dir / "assets" / n).rglob("*") if f.is_file()]
    return sorted([package_dir / "__init__.py"] + [package_dir / f"{n}.py" for n in done] + assets)


def code_digest(script: Path, package_dir: Path) -> str:
    digest = hashlib.sha256()
    for file in modules_used(script, package_dir):
        name = file.relative_to(package_dir).as_posix()  # a module's is its file name, as before
        digest.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
