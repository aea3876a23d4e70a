"""Starting the web server on a busy machine: Gradio's own startup check may time out once."""

from __future__ import annotations

import gradio as gr
import httpx
import pytest

from engine.errors import ConfigError
from tests.support.servers import free_port
from webapp.serve import STARTUP_ATTEMPTS, launch_checked


def slow_first_answers(monkeypatch, failures: int) -> list[str]:
    """Gradio's startup check (one HEAD of the page, 3 s timeout) times out `failures` times, as on a
    swamped machine; the server itself is real. Returns the URLs it was asked about."""
    import gradio.networking

    real, asked = gradio.networking.url_ok, []

    def check(url: str) -> bool:
        asked.append(url)
        return False if len(asked) <= failures else real(url)

    monkeypatch.setattr(gradio.networking, "url_ok", check)
    return asked


def small_demo() -> gr.Blocks:
    with gr.Blocks() as demo:
        gr.Markdown("Started.")
    return demo


def test_a_timed_out_startup_check_starts_the_server_again(monkeypatch):
    asked = slow_first_answers(monkeypatch, failures=STARTUP_ATTEMPTS - 1)
    demo, port = small_demo(), free_port()
    try:
        launch_checked(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        assert len(asked) == STARTUP_ATTEMPTS  # two checks failed, the third launch passed its check
        assert httpx.get(f"http://127.0.0.1:{port}/config", timeout=10).status_code == 200
    finally:
        demo.close()


def test_a_check_that_keeps_failing_says_so_readably_and_frees_the_port(monkeypatch):
    slow_first_answers(monkeypatch, failures=STARTUP_ATTEMPTS)
    demo, port = small_demo(), free_port()
    with pytest.raises(ConfigError, match="did not answer its own first request") as caught:
        launch_checked(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    assert "share=True" not in str(caught.value)  # Gradio's advice, wrong here
    with pytest.raises(httpx.ConnectError):  # nothing left listening
        httpx.get(f"http://127.0.0.1:{port}/config", timeout=5)
