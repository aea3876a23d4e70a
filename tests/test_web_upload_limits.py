"""What a stranger may upload: the server caps every upload's size, and an import names no server path."""

from __future__ import annotations

import httpx
import pytest

from engine.errors import MemGPTError
from webapp.agent_tab import IMPORT_MAX_BYTES
from webapp.serve import MAX_UPLOAD


def test_the_served_app_refuses_an_upload_over_its_cap_and_takes_one_under_it(tmp_path, fake_openai):
    from tests.support.servers import AppProcess, fake_home

    assert MAX_UPLOAD == f"{IMPORT_MAX_BYTES // (1024 * 1024)}mb"  # the largest a handler reads, no more
    server = AppProcess(fake_home(tmp_path / "home", fake_openai.base_url), web=True)
    try:
        url = f"http://127.0.0.1:{server.port}/gradio_api/upload"
        big = b"x" * (IMPORT_MAX_BYTES + 1024 * 1024)
        refused = httpx.post(url, files={"files": ("big.json", big)}, timeout=60)
        assert refused.status_code == 413  # Gradio stored uploads of any size before (300 MB in 0.8 s)
        taken = httpx.post(url, files={"files": ("small.json", b"{}")}, timeout=60)
        assert taken.status_code == 200 and taken.json()[0].endswith("small.json")
    finally:
        server.stop()


def test_an_import_error_names_the_upload_not_where_the_server_keeps_it(runtime, tmp_path):
    from engine.api import MemGPT

    api = MemGPT(runtime=runtime)
    upload = tmp_path / "gradio" / "0f3a9c" / "agent.json"
    upload.parent.mkdir(parents=True)
    upload.write_text("[{}, {}, not json")
    with pytest.raises(MemGPTError) as refused:
        api.import_agent(upload, shown=upload.name)
    assert "agent.json is not an agent export" in str(refused.value) and str(tmp_path) not in str(refused.value)
    upload.write_text("[" + "{}," * 1000 + "{}]")
    with pytest.raises(MemGPTError, match="agent.json is larger than 100 bytes"):
        api.import_agent(upload, max_bytes=100, shown=upload.name)
