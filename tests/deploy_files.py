"""What deploy/ describes, read for tests/test_deploy.py: its YAML documents, the processes it
starts from this repository's images, the variables the settings classes read, and a check of a
command line against the real CLI (click) it names.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import itertools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy"
PACKAGES = ("conversations", "features", "models", "pipelines", "serving", "monitoring")
# Images this repository builds; the rest (postgres, redis) are upstream images and their own
# commands and variables are theirs.
OWN_IMAGE = re.compile(r"^supportloop-[a-z-]+(:|$)")
# Variables read by the frameworks rather than by a settings class (each checked below).
FRAMEWORK_VARIABLES = {
    "DAGSTER_HOME",
    "MLFLOW_BACKEND_STORE_URI",
    "MLFLOW_S3_ENDPOINT_URL",
    # botocore's, read by s3fs for the lake and the reports (models/location.py).
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
}
URL_HOST_PORT = re.compile(r"//(?:[^@/\s]+@)?([a-z][a-z0-9-]*):(\d+)")
BENTOFILE = yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())
# What a container of the Bento image runs (`bentoml containerize`: its entrypoint serves the
# Bento, and the image EXPOSEs BentoML's default port).
BENTO_ARGV = ["bentoml", "serve", BENTOFILE["service"], "--port", "3000"]


@dataclass
class Container:
    """A process the deployment starts from one of this repository's images."""

    where: str
    image: str
    argv: list[str]
    env: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)


def deploy_yaml() -> dict[str, list[Any]]:
    """Every YAML document under deploy/, by path relative to deploy/."""
    return {
        path.relative_to(DEPLOY).as_posix(): [d for d in yaml.safe_load_all(path.read_text()) if d]
        for path in sorted(DEPLOY.rglob("*.yaml"))
    }


def settings_classes() -> list[type[BaseSettings]]:
    """Every pydantic-settings class declared in the packages (found with ast, then imported)."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            names = [
                node.name
                for node in tree.body
                if isinstance(node, ast.ClassDef)
                and any(getattr(base, "id", None) == "BaseSettings" for base in node.bases)
            ]
            if names:
                module = importlib.import_module(
                    ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
                )
                found += [getattr(module, name) for name in names]
    return found


def settings_variables() -> set[str]:
    """The environment variable names the settings classes read."""
    names: set[str] = set()
    for cls in settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
            elif isinstance(alias, str):
                names.add(alias.upper())
            else:
                names.add(f"{prefix}{name}".upper())
    return names


def merge_compose(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Compose's rule for `-f a.yaml -f b.yaml`: mappings merge key by key, the rest is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_compose(merged[key], value)
        else:
            merged[key] = value
    return merged


def compose(*overrides: str) -> dict[str, Any]:
    """deploy/compose.yaml, with the override files named (e.g. the object-store variant)."""
    documents = deploy_yaml()
    merged = documents["compose.yaml"][0]
    for name in overrides:
        merged = merge_compose(merged, documents[name][0])
    return merged


# Every variant a user may start: checked as a whole, as `docker compose -f … -f …` sees it.
COMPOSE_VARIANTS = ((), ("compose.object-store.yaml",))


def k8s_objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, documents in deploy_yaml().items():
        if path.startswith("k8s/"):
            yield from ((path, doc) for doc in documents if "kind" in doc)


def helm_values() -> dict[str, Any]:
    return deploy_yaml()["k8s/dagster-values.yaml"][0]


def dockerfile_cmd() -> list[str]:
    line = next(x for x in (DEPLOY / "Dockerfile").read_text().splitlines() if x.startswith("CMD"))
    return list(yaml.safe_load(line.removeprefix("CMD")))


def image_default_argv(image: str) -> list[str]:
    """What a container of this image runs when the deployment names no command."""
    return BENTO_ARGV if image.split(":")[0] == BENTOFILE["name"] else dockerfile_cmd()


def containers(*overrides: str) -> list[Container]:
    """Every process started from this repository's images in compose, Kubernetes and Helm."""
    found = []
    for name, service in compose(*overrides)["services"].items():
        if not OWN_IMAGE.match(service.get("image", "")):
            continue
        argv = list(service.get("command", image_default_argv(service["image"])))
        ports = {int(port) for port in service.get("expose", [])}
        env = set(service.get("environment", {}))
        found.append(Container(f"compose {name}", service["image"], argv, env, ports))
    for path, obj in k8s_objects():
        if obj["kind"] != "Deployment":
            continue
        for spec in obj["spec"]["template"]["spec"]["containers"]:
            argv = [*spec.get("command", image_default_argv(spec["image"])), *spec.get("args", [])]
            env = {item["name"] for item in spec.get("env", [])}
            ports = {port["containerPort"] for port in spec.get("ports", [])}
            found.append(Container(f"{path} {spec['name']}", spec["image"], argv, env, ports))
    for deployment in helm_values()["dagster-user-deployments"]["deployments"]:
        image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
        argv = ["dagster", "api", "grpc", *deployment["dagsterApiGrpcArgs"]]
        ports = {deployment["port"]}
        found.append(Container(f"helm {deployment['name']}", image, argv, set(), ports))
    return found


def iter_key(node: Any, key: str) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                yield from value
            else:
                yield from iter_key(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from iter_key(item, key)


def click_command(executable: str) -> click.Command | None:
    """The click command behind a console script of the environment, if it is one."""
    points = importlib.metadata.entry_points(group="console_scripts", name=executable)
    if not points:
        return None
    point = next(iter(points))
    loaded = point.load()
    if isinstance(loaded, click.Command):
        return loaded
    # `main()` wrappers: the click group is the module's `cli` (dagster, dagster-webserver,
    # dagster-daemon) or, for celery, celery.bin.celery.celery.
    if executable == "celery":
        return importlib.import_module("celery.bin.celery").celery
    return getattr(sys.modules[point.module], "cli", None)


def option_of(command: click.Command, flag: str) -> click.Parameter | None:
    for param in command.params:
        if flag in (*param.opts, *param.secondary_opts):
            return param
    return None


def check_argv(where: str, argv: list[str]) -> None:
    """The executable exists; its subcommands and options exist; `-m`/`-A` modules are ours."""
    executable = argv[0]
    assert Path(sys.executable).with_name(executable).exists(), f"{where}: no {executable}"
    for flag, value in itertools.pairwise(argv):
        if flag in ("-m", "--module-name", "-A") and executable != "python":
            module = REPO_ROOT.joinpath(*value.split(".")).with_suffix(".py")
            assert module.is_file(), f"{where}: module {value} does not exist"
    command = click_command(executable)
    if command is None:
        return
    words = argv[1:]
    position = 0
    while position < len(words):
        word = words[position]
        if word.startswith("-"):
            param = option_of(command, word.split("=")[0])
            assert param is not None, f"{where}: {command.name} has no option {word}"
            takes_value = not getattr(param, "is_flag", False) and not getattr(param, "count", 0)
            position += 2 if takes_value and "=" not in word else 1
            continue
        if isinstance(command, click.Group):
            sub = command.get_command(click.Context(command), word)
            assert sub is not None, f"{where}: {executable} has no command {word!r}"
            command = sub
        position += 1
