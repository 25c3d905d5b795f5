"""Unknown routes and wrong methods answer JSON `{"error": ...}`; /chat redirects without a host."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/no-such-route", 404, None),
        ("POST", "/admin/no-such-thing", 404, None),
        ("GET", "/chat/no-such-page", 404, None),
        ("GET", "/predict", 405, "POST"),
        ("DELETE", "/feedback", 405, "POST"),
        ("PUT", "/chat/", 405, "GET"),
    ],
)
def test_unknown_routes_and_wrong_methods_answer_json(service, method, path, status, allow):
    response = httpx.request(method, f"{service.url}{path}", timeout=30)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert set(document) == {"error"} and path in document["error"], document
    assert response.headers.get("allow") == allow


@pytest.mark.parametrize(
    ("path", "body", "setting"),
    [
        ("/chat/dev/token", {"user_id": "u"}, "CHAT_DEV_LOGIN"),
        ("/chat/widget/session", {"token": "a.b.c"}, "CHAT_WIDGET_KEYS"),
    ],
)
def test_a_json_error_of_a_route_keeps_its_own_body(service, path, body, setting):
    # A 404 a route answers on purpose (dev login off, no widget sites) still says why.
    response = httpx.post(f"{service.url}{path}", json=body, timeout=30)
    assert response.status_code == 404, response.text
    document = response.json()
    assert set(document) == {"error"} and setting in document["error"], document


def test_a_malformed_chat_body_is_a_400_error_like_the_api_routes(service):
    response = httpx.post(f"{service.url}/chat/dev/token", json={"user_id": "a b"}, timeout=30)
    assert response.status_code == 400, response.text
    document = response.json()
    assert set(document) == {"error", "detail"} and "user_id" in document["error"], document
    [problem] = document["detail"]
    assert problem["loc"] == ["body", "user_id"] and problem["msg"], problem


@pytest.mark.parametrize("query", ["", "?token=abc"])
def test_chat_redirects_to_a_relative_path_whatever_the_host_header(service, query):
    response = httpx.get(f"{service.url}/chat{query}", headers={"host": "evil.example"}, timeout=30)
    assert response.status_code in (301, 302, 307, 308)
    assert response.headers["location"] == f"/chat/{query}"
    followed = httpx.get(f"{service.url}/chat{query}", follow_redirects=True, timeout=30)
    assert followed.status_code == 200 and followed.url.path == "/chat/"


@pytest.mark.parametrize("path", ["/chat/dev/token", "/chat/widget/session"])
def test_an_unreadable_chat_body_is_a_400_error(service, path):
    # Not UTF-8: FastAPI's own HTTPException(400), answered in the same `{"error"}` shape.
    response = httpx.post(
        f"{service.url}{path}",
        content=b'{"token": "\xff\xfe"}',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    document = response.json()
    assert set(document) == {"error"} and document["error"], document
