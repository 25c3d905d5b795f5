"""Schemathesis drives every operation in /docs.json with generated inputs and runs all its checks.

Every status, header and body an endpoint answers must be the one /docs.json declares (no 5xx,
no undocumented status, responses matching their schemas, schema-valid requests accepted and
invalid ones rejected), and authenticated operations must refuse requests without or with a
wrong credential (the `ignored_auth` check probes each one that answered 2xx).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from tests.serving.conftest import ADMIN_KEY

pytestmark = pytest.mark.slow


def reviewed_labels(service) -> int:
    engine = store_engine.create_engine(service.env["SERVING_STORE_URL"])
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(tables.labels.c.trust == "reviewed")
        count = connection.execute(query).scalar_one()
    engine.dispose()
    return count


def test_schemathesis_finds_no_contract_violation(service):
    labels_before = reviewed_labels(service)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{service.url}/docs.json",
            "--checks",
            "all",
            # The admin key opens /admin/reload and /feedback; ignored_auth removes and spoils it.
            "--header",
            f"X-API-Key: {ADMIN_KEY}",
            "--max-examples",
            "40",
            "--generation-deterministic",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Failures:" not in output
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) >= 8, output[-2000:]
    # The credential worked, so ignored_auth had authenticated successes to probe.
    assert reviewed_labels(service) > labels_before
