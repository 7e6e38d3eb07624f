"""A signed-in browser without a browser: the console over FastAPI's TestClient on HTTPS.

The console's cookies are Secure, so the client talks to https://testserver. Analysts are real
rows with real argon2 hashes; passwords are generated per test run.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hq.console.analysts import add_analyst
from tests.hq.conftest import Hq

PASSWORD = "pw-" + secrets.token_urlsafe(12)
ROLE_IDS = {"viewer": "vera", "analyst": "anton", "admin": "ada"}


@dataclass
class Browser:
    client: TestClient
    csrf: str = ""
    history: list[str] = field(default_factory=list)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(path, **kwargs)
        self._remember(response)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             **kwargs: Any) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf", self.csrf)
        kwargs.setdefault("follow_redirects", False)
        response = self.client.post(path, data=form, **kwargs)
        self._remember(response)
        return response

    def _remember(self, response: httpx.Response) -> None:
        found = re.search(r'name="csrf" value="([^"]+)"', response.text) if "text/html" in \
            response.headers.get("content-type", "") else None
        if found:
            self.csrf = found.group(1)
        self.history.append(response.text)


def login_token(client: TestClient, next_url: str = "/console/") -> str:
    page = client.get(f"/console/login?next={next_url}")
    found = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: TestClient, analyst_id: str, password: str = PASSWORD) -> httpx.Response:
    token = login_token(client)
    return client.post("/console/login", data={"login_token": token, "next": "/console/", "analyst_id": analyst_id,
                                               "password": password}, follow_redirects=False)


@dataclass
class ConsoleHq:
    hq: Hq
    clients: list[TestClient] = field(default_factory=list)

    @property
    def state(self) -> Any:
        return self.hq.state

    def new_client(self) -> TestClient:
        # The hq fixture's client already runs the app's lifespan; this one only talks HTTPS.
        client = TestClient(self.hq.client.app, base_url="https://testserver")
        self.clients.append(client)
        return client

    def analyst(self, role: str, analyst_id: str | None = None) -> str:
        analyst_id = analyst_id or ROLE_IDS[role]
        with self.state.sessions.begin() as session:
            add_analyst(session, analyst_id=analyst_id, role=role, password=PASSWORD, now=time.time(), replace=True)
        return analyst_id

    def browser(self, role: str) -> Browser:
        client = self.new_client()
        response = sign_in(client, self.analyst(role))
        assert response.status_code == 303, response.text
        browser = Browser(client)
        assert browser.get("/console/").status_code == 200
        return browser


@pytest.fixture
def console(hq: Hq) -> Iterator[ConsoleHq]:
    made = ConsoleHq(hq)
    yield made
    for client in made.clients:
        client.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so a browser fixture can screenshot a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
