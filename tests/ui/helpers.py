"""What the UI tests do over and over: scripted tool calls, creating an agent, opening a tab, Gradio's badge."""

from __future__ import annotations

import json
import re
import time

from playwright.sync_api import Locator, Page, expect


def tool_call(name, arguments, call_id):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def say(text: str, call_id: str = "s0", thought: str = "Reply.") -> dict:
    """A scripted reply that sends `text` to the user."""
    return {"content": thought, "tool_calls": [tool_call("send_message", {"message": text}, call_id)]}


def create_agent(page: Page, name: str) -> None:
    """Through the New agent form, opened first when it is folded (it folds once an agent exists)."""
    field = page.get_by_label("Name", exact=True)
    toggle = page.get_by_role("button", name=re.compile("^New agent"))
    expect(toggle).to_be_visible()  # the page is drawn
    if not field.is_visible():
        toggle.click()
        try:
            expect(field).to_be_visible(timeout=5_000)
        except AssertionError:  # it was open but not drawn yet (a loaded machine), so the click folded it
            toggle.click()
    field.fill(name)
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text(re.compile(rf"{name} · model gpt-test"))).to_be_visible()


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def error_badges(page: Page) -> Locator:
    """Gradio's red "Error" label over the outputs of a handler that raised (the toast's title is not one)."""
    return page.locator("span.error:not(.toast-title)")


def wait_until(check, timeout: float = 30.0) -> None:
    """Poll server-side state (not the clock) until `check()` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        time.sleep(0.05)
