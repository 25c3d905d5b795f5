"""deploy/ holds together: every file parses, and every setting, command, port and image it names
exists in the project. No Docker engine or cluster runs here, so this is what can be checked.

The environment variables allowed are read from the pydantic-settings classes themselves (found
by scanning the packages), so renaming a setting fails here until deploy/ follows.
"""

from __future__ import annotations

import importlib
import itertools
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy_files import (
    COMPOSE_VARIANTS,
    DEPLOY,
    FRAMEWORK_VARIABLES,
    OWN_IMAGE,
    REPO_ROOT,
    URL_HOST_PORT,
    check_argv,
    compose,
    containers,
    deploy_yaml,
    dockerfile_cmd,
    helm_values,
    iter_key,
    k8s_objects,
    settings_variables,
)


def test_every_deploy_file_parses() -> None:
    """Each YAML file under deploy/ holds at least one document; the Dockerfile has a CMD."""
    documents = deploy_yaml()
    assert {"compose.yaml", "k8s/dagster-values.yaml", "k8s/mlflow.yaml"} <= set(documents)
    assert all(documents.values()), [path for path, docs in documents.items() if not docs]
    assert dockerfile_cmd()[0] == "dagster"


def test_framework_variables_are_read_by_the_frameworks() -> None:
    """The few variables allowed beside the settings are really read by Dagster and MLflow."""
    import mlflow.cli

    assert "MLFLOW_BACKEND_STORE_URI" in {param.envvar for param in mlflow.cli.server.params}
    dagster_root = Path(importlib.import_module("dagster").__file__ or "").parent
    assert "DAGSTER_HOME" in (dagster_root / "_core" / "instance" / "factory.py").read_text()
    from mlflow.environment_variables import MLFLOW_S3_ENDPOINT_URL

    assert MLFLOW_S3_ENDPOINT_URL.name == "MLFLOW_S3_ENDPOINT_URL"
    # The AWS_* variables the object-store variant sets are literals in botocore's readers.
    botocore_root = Path(importlib.import_module("botocore").__file__ or "").parent
    sources = "".join(
        (botocore_root / f).read_text() for f in ("configprovider.py", "credentials.py")
    )
    aws = {name for name in FRAMEWORK_VARIABLES if name.startswith("AWS_")}
    assert {name for name in aws if f"'{name}'" in sources} == aws


@pytest.mark.parametrize("variant", COMPOSE_VARIANTS, ids=["compose", "object-store"])
def test_every_environment_variable_is_a_setting(variant: tuple[str, ...]) -> None:
    """Variables given to this repository's images exist in a settings class (or a framework)."""
    known = settings_variables() | FRAMEWORK_VARIABLES
    named: dict[str, set[str]] = {c.where: c.env for c in containers(*variant)}
    for path, obj in k8s_objects():
        if obj["kind"] in ("ConfigMap", "Secret") and obj["metadata"]["name"].startswith(
            "supportloop-"
        ):
            keys = set(obj.get("data", {})) | set(obj.get("stringData", {}))
            # The chart's password Secret holds one key of its own, not a variable.
            named[f"{path} {obj['metadata']['name']}"] = keys - {"postgresql-password"}
    # The Dockerfile's ENV block (Python's own PYTHON* variables aside).
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    named["deploy/Dockerfile ENV"] = {
        name
        for name in re.findall(r"^(?:ENV|    ) *([A-Z][A-Z0-9_]*)=", dockerfile, re.MULTILINE)
        if not name.startswith("PYTHON")
    }
    for path, documents in deploy_yaml().items():
        if path.startswith("dagster/"):
            named[path] = set(re.findall(r"env: ([A-Z][A-Z0-9_]*)", yaml.safe_dump(documents)))
    unknown = {where: sorted(names - known) for where, names in named.items() if names - known}
    assert not unknown, f"not read by any settings class: {unknown}"
    assert "SUPPORTLOOP_PROFILE" in known and "CHAT_BROKER_URL" in known


def test_secret_and_config_references_exist() -> None:
    """Every ConfigMap, Secret and Secret key a pod or the chart refers to is defined."""
    defined: dict[str, set[str]] = {}
    for _, obj in k8s_objects():
        if obj["kind"] in ("ConfigMap", "Secret"):
            keys = set(obj.get("data", {})) | set(obj.get("stringData", {}))
            defined[obj["metadata"]["name"]] = keys
    text = yaml.safe_dump([doc for _, doc in k8s_objects()]) + yaml.safe_dump(helm_values())
    for name, key in re.findall(r"secretKeyRef:\s+key: (\S+)\s+name: (\S+)", text):
        assert name in defined[key], f"secret {key} has no key {name}"
    referenced = set(re.findall(r"(?:configMapRef|secretRef):\s+name: (\S+)", text))
    referenced |= {item["name"] for item in iter_key(helm_values(), "envSecrets")}
    referenced |= {item["name"] for item in iter_key(helm_values(), "envConfigMaps")}
    referenced.add(helm_values()["global"]["postgresqlSecretName"])
    assert referenced <= set(defined), referenced - set(defined)


# BentoML's CLI imports pathspec's deprecated pattern name; nothing of ours.
@pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")
@pytest.mark.parametrize("variant", COMPOSE_VARIANTS, ids=["compose", "object-store"])
def test_every_command_exists_with_its_options(variant: tuple[str, ...]) -> None:
    """Each command is an executable of the locked stack; its subcommands and options exist;
    every `-m` module is one of the repository's."""
    checked = containers(*variant)
    assert {c.argv[0] for c in checked} >= {"dagster", "dagster-webserver", "mlflow", "celery"}
    for container in checked:
        check_argv(container.where, container.argv)
    for name, service in compose(*variant)["services"].items():
        test = service.get("healthcheck", {}).get("test", [])
        if OWN_IMAGE.match(service.get("image", "")) and test[:1] == ["CMD"]:
            check_argv(f"compose {name} healthcheck", test[1:])
    check_argv("deploy/Dockerfile CMD", dockerfile_cmd())
    assert any("-m" in c.argv and "pipelines.definitions" in c.argv for c in checked)


def _flag_ports(argv: list[str]) -> set[int]:
    return {int(v) for f, v in itertools.pairwise(argv) if f in ("--port", "-p")}


@pytest.mark.parametrize("variant", COMPOSE_VARIANTS, ids=["compose", "object-store"])
def test_ports_agree_between_services(variant: tuple[str, ...]) -> None:
    """Listening ports, published ports, probes and every host:port another service dials."""
    services = compose(*variant)["services"]
    exposed = {name: {int(p) for p in s.get("expose", [])} for name, s in services.items()}
    for container in containers(*variant):
        assert _flag_ports(container.argv) <= container.ports, container.where
    for name, service in services.items():
        published = {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}
        assert published <= exposed[name], name
        text = yaml.safe_dump(service)
        for port in re.findall(r"127\.0\.0\.1:(\d+)/", text):
            assert int(port) in exposed[name], f"{name} probes port {port}"
    dialled = (
        yaml.safe_dump(compose(*variant)) + (DEPLOY / "dagster" / "workspace.yaml").read_text()
    )
    for host, port in URL_HOST_PORT.findall(dialled) + _workspace_servers():
        if host in services:
            assert int(port) in exposed[host], f"{host}:{port} is not exposed by {host}"
    _check_k8s_ports()


def _workspace_servers() -> list[tuple[str, str]]:
    workspace = yaml.safe_load((DEPLOY / "dagster" / "workspace.yaml").read_text())
    servers = [entry["grpc_server"] for entry in workspace["load_from"]]
    return [(server["host"], str(server["port"])) for server in servers]


def _check_k8s_ports() -> None:
    objects = [obj for _, obj in k8s_objects()]
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


@pytest.mark.parametrize("variant", COMPOSE_VARIANTS, ids=["compose", "object-store"])
def test_own_images_come_from_a_dockerfile_or_the_bentofile(variant: tuple[str, ...]) -> None:
    """Every supportloop-* image is built here: deploy/Dockerfile or bentofile.yaml's Bento."""
    built: set[str] = set()
    for name, service in compose(*variant)["services"].items():
        image = service.get("image", "").split(":")[0]
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
            built.add(image)
        elif "x-bentofile" in service:
            bentofile = yaml.safe_load((DEPLOY / service["x-bentofile"]).read_text())
            assert bentofile["name"] == image, f"{name}: the Bento is {bentofile['name']}"
            built.add(image)
    images = {c.image.split(":")[0] for c in containers(*variant)}
    assert {i for i in images if OWN_IMAGE.match(i)} <= built
    assert {"supportloop-platform", "supportloop-intent-service"} <= built


@pytest.mark.parametrize("variant", COMPOSE_VARIANTS, ids=["compose", "object-store"])
def test_files_the_images_and_mounts_need_exist(variant: tuple[str, ...]) -> None:
    """The Dockerfile's COPY sources and compose's bind mounts and named volumes exist."""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY"):
            for source in line.split()[1:-1]:
                assert (REPO_ROOT / source).exists(), f"COPY {source}"
    stack = compose(*variant)
    for name, service in stack["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in stack["volumes"], f"{name}: undeclared volume {source}"


@pytest.mark.parametrize("renamed", ["CHAT_BROKER_URL", "DAGSTER_PG_URL"])
def test_a_renamed_setting_would_be_caught(renamed: str) -> None:
    """The settings scan sees the variables deploy/ uses (a rename removes them from it)."""
    assert renamed in settings_variables()


def test_object_store_variant_keeps_the_lake_in_its_bucket() -> None:
    """With the object-store file, every service that reads LAKE_DIR or REPORTS_DIR points it at
    the bucket the `minio-bucket` job creates, can reach MinIO, and waits for the bucket."""
    stack = compose("compose.object-store.yaml")
    services = stack["services"]
    entrypoint = " ".join(services["minio-bucket"]["entrypoint"])
    bucket = re.search(r"mc mb --ignore-existing store/(\S+)", entrypoint)
    assert bucket, entrypoint
    readers = [n for n, s in services.items() if "LAKE_DIR" in s.get("environment", {})]
    assert {"dagster-code", "dagster-daemon", "dagster-worker"} <= set(readers)
    for name in readers:
        env = services[name]["environment"]
        for key in ("LAKE_DIR", "REPORTS_DIR"):
            assert env[key].startswith(f"s3://{bucket.group(1)}/"), (name, key, env[key])
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000", name
        waits = services[name]["depends_on"]["minio-bucket"]["condition"]
        assert waits == "service_completed_successfully", name
    mlflow = services["mlflow"]
    destination = mlflow["command"][mlflow["command"].index("--artifacts-destination") + 1]
    assert destination.startswith(f"s3://{bucket.group(1)}/"), destination
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "minio" in stack["volumes"]
