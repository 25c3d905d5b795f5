"""deploy/ holds together: every file parses, and every setting, command, port and image it names
exists in the project. No Docker engine or cluster runs here, so this is what can be checked.

The environment variables allowed are read from the pydantic-settings classes themselves (found
by scanning the packages), so renaming a setting fails here until deploy/ follows.
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
import pytest
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
FRAMEWORK_VARIABLES = {"DAGSTER_HOME", "MLFLOW_BACKEND_STORE_URI"}
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


def _compose() -> dict[str, Any]:
    return deploy_yaml()["compose.yaml"][0]


def _k8s_objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, documents in deploy_yaml().items():
        if path.startswith("k8s/"):
            yield from ((path, doc) for doc in documents if "kind" in doc)


def _helm_values() -> dict[str, Any]:
    return deploy_yaml()["k8s/dagster-values.yaml"][0]


def _dockerfile_cmd() -> list[str]:
    line = next(x for x in (DEPLOY / "Dockerfile").read_text().splitlines() if x.startswith("CMD"))
    return list(yaml.safe_load(line.removeprefix("CMD")))


def _image_default_argv(image: str) -> list[str]:
    """What a container of this image runs when the deployment names no command."""
    return BENTO_ARGV if image.split(":")[0] == BENTOFILE["name"] else _dockerfile_cmd()


def containers() -> list[Container]:
    """Every process started from this repository's images in compose, Kubernetes and Helm."""
    found = []
    for name, service in _compose()["services"].items():
        if not OWN_IMAGE.match(service.get("image", "")):
            continue
        argv = list(service.get("command", _image_default_argv(service["image"])))
        ports = {int(port) for port in service.get("expose", [])}
        env = set(service.get("environment", {}))
        found.append(Container(f"compose {name}", service["image"], argv, env, ports))
    for path, obj in _k8s_objects():
        if obj["kind"] != "Deployment":
            continue
        for spec in obj["spec"]["template"]["spec"]["containers"]:
            argv = [*spec.get("command", _image_default_argv(spec["image"])), *spec.get("args", [])]
            env = {item["name"] for item in spec.get("env", [])}
            ports = {port["containerPort"] for port in spec.get("ports", [])}
            found.append(Container(f"{path} {spec['name']}", spec["image"], argv, env, ports))
    for deployment in _helm_values()["dagster-user-deployments"]["deployments"]:
        image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
        argv = ["dagster", "api", "grpc", *deployment["dagsterApiGrpcArgs"]]
        ports = {deployment["port"]}
        found.append(Container(f"helm {deployment['name']}", image, argv, set(), ports))
    return found


def test_every_deploy_file_parses() -> None:
    """Each YAML file under deploy/ holds at least one document; the Dockerfile has a CMD."""
    documents = deploy_yaml()
    assert {"compose.yaml", "k8s/dagster-values.yaml", "k8s/mlflow.yaml"} <= set(documents)
    assert all(documents.values()), [path for path, docs in documents.items() if not docs]
    assert _dockerfile_cmd()[0] == "dagster"


def test_framework_variables_are_read_by_the_frameworks() -> None:
    """The few variables allowed beside the settings are really read by Dagster and MLflow."""
    import mlflow.cli

    assert "MLFLOW_BACKEND_STORE_URI" in {param.envvar for param in mlflow.cli.server.params}
    dagster_root = Path(importlib.import_module("dagster").__file__ or "").parent
    assert "DAGSTER_HOME" in (dagster_root / "_core" / "instance" / "factory.py").read_text()


def test_every_environment_variable_is_a_setting() -> None:
    """Variables given to this repository's images exist in a settings class (or a framework)."""
    known = settings_variables() | FRAMEWORK_VARIABLES
    named: dict[str, set[str]] = {c.where: c.env for c in containers()}
    for path, obj in _k8s_objects():
        if obj["kind"] in ("ConfigMap", "Secret") and obj["metadata"]["name"].startswith(
            "supportloop-"
        ):
            keys = set(obj.get("data", {})) | set(obj.get("stringData", {}))
            # The chart's password Secret holds one key of its own, not a variable.
            named[f"{path} {obj['metadata']['name']}"] = keys - {"postgresql-password"}
    for path, documents in deploy_yaml().items():
        if path.startswith("dagster/"):
            named[path] = set(re.findall(r"env: ([A-Z][A-Z0-9_]*)", yaml.safe_dump(documents)))
    unknown = {where: sorted(names - known) for where, names in named.items() if names - known}
    assert not unknown, f"not read by any settings class: {unknown}"
    assert "SUPPORTLOOP_PROFILE" in known and "CHAT_BROKER_URL" in known


def test_secret_and_config_references_exist() -> None:
    """Every ConfigMap, Secret and Secret key a pod or the chart refers to is defined."""
    defined: dict[str, set[str]] = {}
    for _, obj in _k8s_objects():
        if obj["kind"] in ("ConfigMap", "Secret"):
            keys = set(obj.get("data", {})) | set(obj.get("stringData", {}))
            defined[obj["metadata"]["name"]] = keys
    text = yaml.safe_dump([doc for _, doc in _k8s_objects()]) + yaml.safe_dump(_helm_values())
    for name, key in re.findall(r"secretKeyRef:\s+key: (\S+)\s+name: (\S+)", text):
        assert name in defined[key], f"secret {key} has no key {name}"
    referenced = set(re.findall(r"(?:configMapRef|secretRef):\s+name: (\S+)", text))
    referenced |= {item["name"] for item in _iter_key(_helm_values(), "envSecrets")}
    referenced |= {item["name"] for item in _iter_key(_helm_values(), "envConfigMaps")}
    referenced.add(_helm_values()["global"]["postgresqlSecretName"])
    assert referenced <= set(defined), referenced - set(defined)


def _iter_key(node: Any, key: str) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                yield from value
            else:
                yield from _iter_key(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _iter_key(item, key)


def _click_command(executable: str) -> click.Command | None:
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


def _option(command: click.Command, flag: str) -> click.Parameter | None:
    for param in command.params:
        if flag in (*param.opts, *param.secondary_opts):
            return param
    return None


def _check_argv(where: str, argv: list[str]) -> None:
    """The executable exists; its subcommands and options exist; `-m`/`-A` modules are ours."""
    executable = argv[0]
    assert Path(sys.executable).with_name(executable).exists(), f"{where}: no {executable}"
    for flag, value in itertools.pairwise(argv):
        if flag in ("-m", "--module-name", "-A") and executable != "python":
            module = REPO_ROOT.joinpath(*value.split(".")).with_suffix(".py")
            assert module.is_file(), f"{where}: module {value} does not exist"
    command = _click_command(executable)
    if command is None:
        return
    words = argv[1:]
    position = 0
    while position < len(words):
        word = words[position]
        if word.startswith("-"):
            param = _option(command, word.split("=")[0])
            assert param is not None, f"{where}: {command.name} has no option {word}"
            takes_value = not getattr(param, "is_flag", False) and not getattr(param, "count", 0)
            position += 2 if takes_value and "=" not in word else 1
            continue
        if isinstance(command, click.Group):
            sub = command.get_command(click.Context(command), word)
            assert sub is not None, f"{where}: {executable} has no command {word!r}"
            command = sub
        position += 1


# BentoML's CLI imports pathspec's deprecated pattern name; nothing of ours.
@pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")
def test_every_command_exists_with_its_options() -> None:
    """Each command is an executable of the locked stack; its subcommands and options exist;
    every `-m` module is one of the repository's."""
    checked = containers()
    assert {c.argv[0] for c in checked} >= {"dagster", "dagster-webserver", "mlflow", "celery"}
    for container in checked:
        _check_argv(container.where, container.argv)
    for name, service in _compose()["services"].items():
        test = service.get("healthcheck", {}).get("test", [])
        if OWN_IMAGE.match(service.get("image", "")) and test[:1] == ["CMD"]:
            _check_argv(f"compose {name} healthcheck", test[1:])
    assert any("-m" in c.argv and "pipelines.definitions" in c.argv for c in checked)


def _flag_ports(argv: list[str]) -> set[int]:
    return {int(v) for f, v in itertools.pairwise(argv) if f in ("--port", "-p")}


def test_ports_agree_between_services() -> None:
    """Listening ports, published ports, probes and every host:port another service dials."""
    services = _compose()["services"]
    exposed = {name: {int(p) for p in s.get("expose", [])} for name, s in services.items()}
    for container in containers():
        assert _flag_ports(container.argv) <= container.ports, container.where
    for name, service in services.items():
        published = {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}
        assert published <= exposed[name], name
        text = yaml.safe_dump(service)
        for port in re.findall(r"127\.0\.0\.1:(\d+)/", text):
            assert int(port) in exposed[name], f"{name} probes port {port}"
    dialled = yaml.safe_dump(_compose()) + (DEPLOY / "dagster" / "workspace.yaml").read_text()
    for host, port in URL_HOST_PORT.findall(dialled) + _workspace_servers():
        if host in services:
            assert int(port) in exposed[host], f"{host}:{port} is not exposed by {host}"
    _check_k8s_ports()


def _workspace_servers() -> list[tuple[str, str]]:
    workspace = yaml.safe_load((DEPLOY / "dagster" / "workspace.yaml").read_text())
    servers = [entry["grpc_server"] for entry in workspace["load_from"]]
    return [(server["host"], str(server["port"])) for server in servers]


def _check_k8s_ports() -> None:
    objects = [obj for _, obj in _k8s_objects()]
    pods = {
        obj["metadata"]["name"]: obj["spec"]["template"]
        for obj in objects
        if obj["kind"] == "Deployment"
    }
    services = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "Service"}
    for name, service in services.items():
        selector = service["spec"]["selector"]
        chosen = [p for p in pods.values() if selector.items() <= p["metadata"]["labels"].items()]
        assert chosen, f"service {name} selects no pod"
        container_ports = {
            port["containerPort"]
            for pod in chosen
            for container in pod["spec"]["containers"]
            for port in container.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, f"service {name} port {port}"
    for pod in pods.values():
        for container in pod["spec"]["containers"]:
            own = {port["containerPort"] for port in container.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe in container:
                    assert container[probe]["httpGet"]["port"] in own, container["name"]
    for host, port in URL_HOST_PORT.findall(yaml.safe_dump(objects)):
        if host in services:
            assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, host


def test_own_images_come_from_a_dockerfile_or_the_bentofile() -> None:
    """Every supportloop-* image is built here: deploy/Dockerfile or bentofile.yaml's Bento."""
    built: set[str] = set()
    for name, service in _compose()["services"].items():
        image = service.get("image", "").split(":")[0]
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
            built.add(image)
        elif "x-bentofile" in service:
            bentofile = yaml.safe_load((DEPLOY / service["x-bentofile"]).read_text())
            assert bentofile["name"] == image, f"{name}: the Bento is {bentofile['name']}"
            built.add(image)
    images = {c.image.split(":")[0] for c in containers()}
    assert {i for i in images if OWN_IMAGE.match(i)} <= built
    assert {"supportloop-platform", "supportloop-intent-service"} <= built


def test_files_the_images_and_mounts_need_exist() -> None:
    """The Dockerfile's COPY sources and compose's bind mounts and named volumes exist."""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY"):
            for source in line.split()[1:-1]:
                assert (REPO_ROOT / source).exists(), f"COPY {source}"
    compose = _compose()
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


@pytest.mark.parametrize("renamed", ["CHAT_BROKER_URL", "DAGSTER_PG_URL"])
def test_a_renamed_setting_would_be_caught(renamed: str) -> None:
    """The settings scan sees the variables deploy/ uses (a rename removes them from it)."""
    assert renamed in settings_variables()
