"""/metrics of a real `bentoml serve` under a client sending made-up paths: series stay bounded."""

from __future__ import annotations

import re
import uuid

import httpx

from serving.metric_labels import UNMATCHED

REQUESTS = re.compile(
    r'^bentoml_service_request_total\{endpoint="([^"]*)",http_response_code="(\d+)"'
)


def _request_counts(url: str) -> dict[tuple[str, str], float]:
    """`bentoml_service_request_total` by (endpoint label, status)."""
    counts: dict[tuple[str, str], float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if match := REQUESTS.match(line):
            counts[match.groups()] = counts.get(match.groups(), 0.0) + float(line.split()[-1])
    return counts


def test_made_up_paths_are_counted_under_one_label(service):
    probe = uuid.uuid4().hex
    paths = [f"/probe-{probe}-{n}" for n in range(10)] + [
        f"/chat/probe-{probe}",
        f"/chat/static/probe-{probe}.js",
        f"/chat/static/../probe-{probe}",
    ]
    before = _request_counts(service.url)
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for path in paths:
            assert client.get(path).status_code == 404
        assert client.get("/chat/static/chat.js").status_code == 200
        assert client.post("/predict", json={"text": "where is my card"}).status_code == 200
        # Routes of the service's own FastAPI apps (BentoML mounts them passively).
        assert client.get("/version").status_code == 200
        assert client.post("/admin/reload").status_code == 401
    after = _request_counts(service.url)

    labels = {endpoint for endpoint, _ in after}
    assert not [label for label in labels if probe in label]
    # Every refusal still counted: under UNMATCHED, or a mount's label (/chat/static/{path}).
    refused = sum(count - before.get(key, 0.0) for key, count in after.items() if key[1] == "404")
    assert refused >= len(paths)
    assert after[(UNMATCHED, "404")] - before.get((UNMATCHED, "404"), 0.0) >= 10
    # Routes keep their own label; static files share their mount's.
    for route, status in (("/predict", "200"), ("/version", "200"), ("/admin/reload", "401")):
        assert after[(route, status)] > before.get((route, status), 0.0)
    assert ("/chat/static/{path}", "200") in after
