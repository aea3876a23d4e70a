"""The web login under a guessing attack: Gradio's real /login route with the throttled check."""

from __future__ import annotations

import inspect
import time

import gradio as gr
import httpx
import pytest

from tests.support.servers import launch_app
from webapp.login import LoginGuard, login_guard

USER, PASSWORD = "ada", "correct horse battery"


@pytest.fixture
def site(request, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    with gr.Blocks() as demo:
        gr.Markdown("inside")
    delay = getattr(request, "param", 0.5)  # short, so the lockout test can wait one out
    auth = login_guard((USER, PASSWORD), free_failures=3, base_delay=delay, max_delay=max(1.5, delay))
    port = launch_app(demo, auth=auth)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        demo.close()


def _login(client: httpx.Client, password: str, username: str = USER) -> httpx.Response:
    return client.post("/login", data={"username": username, "password": password})


def test_thirty_wrong_logins_are_refused_and_the_right_one_works_after_the_lockout(site):
    answers = [_login(site, f"guess-{i}") for i in range(30)]
    codes = [r.status_code for r in answers]
    assert codes[:3] == [400, 400, 400]  # the free failures: plain "Incorrect credentials."
    refused = [r for r in answers if r.status_code == 429]
    assert len(refused) >= 25, codes
    assert all(r.status_code in (400, 429) for r in answers)
    assert "Too many failed logins. Try again in" in refused[-1].json()["detail"]
    wait = int(refused[-1].headers["Retry-After"])
    assert 1 <= wait <= 2

    # While closed, even the right password is turned away: a guess cannot be told from it.
    assert _login(site, PASSWORD).status_code == 429

    time.sleep(wait + 0.2)
    ok = _login(site, PASSWORD)
    assert ok.status_code == 200 and ok.json() == {"success": True}
    assert any(name.startswith("access-token") for name in ok.cookies)

    # A success reopens the name: the next mistake is an ordinary one.
    assert _login(site, "wrong again").status_code == 400


# A lockout longer than the burst: on a busy machine 24 requests can outlast half a second.
@pytest.mark.parametrize("site", [30.0], indirect=True)
def test_parallel_guesses_get_no_more_tries(site):
    from concurrent.futures import ThreadPoolExecutor

    for i in range(3):
        assert _login(site, f"free-{i}").status_code == 400
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: _login(site, f"burst-{i}").status_code, range(24)))
    assert codes.count(400) <= 1 and codes.count(429) >= 23, codes


def test_guessing_names_too_hits_the_overall_limit():
    now = [1000.0]
    guard = LoginGuard(USER, PASSWORD, free_failures=5, global_limit=10, global_window=60, clock=lambda: now[0])
    for i in range(10):
        assert guard.verify(f"name-{i}", "x") is False
    with pytest.raises(Exception) as refused:
        guard.verify("name-new", "x")
    assert refused.value.status_code == 429 and "Try again in 60 s" in refused.value.detail
    now[0] += 61
    assert guard.verify(USER, PASSWORD) is True


def test_delays_double_up_to_the_cap():
    now = [0.0]
    guard = LoginGuard(USER, PASSWORD, free_failures=2, base_delay=1.0, max_delay=8.0, clock=lambda: now[0])
    waits = []
    for _ in range(8):
        now[0] += guard.wait(USER)
        assert guard.verify(USER, "wrong") is False
        waits.append(guard.wait(USER))
    assert waits == [0, 0, 1, 2, 4, 8, 8, 8]


def test_what_serve_passes_to_gradio():
    assert login_guard(None) is None
    check = login_guard((USER, PASSWORD))
    # Gradio awaits the check only when it is a coroutine function; else it would get a coroutine (truthy!).
    assert inspect.iscoroutinefunction(check)
