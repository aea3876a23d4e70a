"""Fixtures: every test gets its own data home, database file and registry."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from engine.agents import create_agent  # noqa: E402
from engine.config import EmbeddingConfig, LLMConfig, load_settings  # noqa: E402
from engine.presets import PresetLibrary  # noqa: E402
from engine.store import SqliteStore  # noqa: E402
from engine.tools.registry import builtin_registry  # noqa: E402
from tests.support.embedder import HashEmbedder  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("MEMGPT_HOME", str(path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    return path


@pytest.fixture
def settings(home):
    return load_settings(home, env={})


BACKENDS = ("sqlite", "postgres")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "both_stores: run each test that uses the `store` fixture on SQLite and on PostgreSQL"
    )
    config.addinivalue_line("markers", "sqlite_only: a test of SQLite itself (files, pragmas) in a both_stores module")


def pytest_generate_tests(metafunc):
    definition = metafunc.definition
    if (
        ("store" in metafunc.fixturenames or "database_url" in metafunc.fixturenames)
        and definition.get_closest_marker("both_stores")
        and not definition.get_closest_marker("sqlite_only")
    ):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


UI_TESTS = "tests/ui/"


def pytest_collection_modifyitems(session, config, items):
    """The slow real-model modules first and the browser tests next, so that with the suite spread
    over workers the longest units start at once instead of running alone at the end."""

    def order(item) -> int:
        if item.get_closest_marker("slow") is not None:
            return 0
        return 1 if item.nodeid.startswith(UI_TESTS) else 2

    items.sort(key=order)  # a stable sort keeps the rest in order


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent when it is not installed
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` (pytest.ini), with every browser test in one unit of work.

    Each module stays on one worker, so its module fixtures are set up once. Two Chromiums and two
    Gradio servers side by side on two cores made expect() timeouts and half-drawn forms the usual
    failure of parallel runs, so the browser tests take turns on one worker while the other runs the rest.
    (xdist's own `--dist loadgroup` cannot do this under pytest 9.2, which ignores the node id it rewrites.)
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndOneBrowser(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return UI_TESTS if nodeid.startswith(UI_TESTS) else super()._split_scope(nodeid)

    return ModulesAndOneBrowser(config, log)


def pytest_sessionfinish(session, exitstatus):
    from tests.support import postgres

    postgres.stop()


@pytest.fixture
def backend(request) -> str:
    """Which store the test runs on: "sqlite" unless the module is marked both_stores."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(backend, monkeypatch):
    """A fresh PostgreSQL database for a postgres run (also in MEMGPT_DATABASE_URL), else None."""
    if backend != "postgres":
        yield None
        return
    from tests.support import postgres

    url = postgres.fresh_database()
    monkeypatch.setenv("MEMGPT_DATABASE_URL", url)
    yield url
    postgres.drop_database(url)


@pytest.fixture
def store(settings, database_url):
    if database_url:
        from engine.store.pg import PgStore

        s = PgStore(database_url, home=settings.home)
    else:
        s = SqliteStore(settings.db_path, home=settings.home)
    yield s
    s.close()


@pytest.fixture
def library(home):
    return PresetLibrary(home)


@pytest.fixture
def registry():
    return builtin_registry()


@pytest.fixture
def embedder():
    return HashEmbedder(64)


@pytest.fixture
def make_agent(store, settings, library, registry, embedder):
    def make(name: str = "ada", **kwargs):
        kwargs.setdefault("llm", LLMConfig(endpoint_type="openai-compatible", model="scripted", endpoint="http://127.0.0.1:9/v1"))
        kwargs.setdefault(
            "embedding", EmbeddingConfig(endpoint_type="openai-compatible", model=embedder.name, dim=embedder.dimension)
        )
        return create_agent(store, settings, library, registry, name, **kwargs)

    return make


@pytest.fixture
def agent(make_agent):
    return make_agent()


@pytest.fixture
def fake_openai(embedder):
    from tests.support.fake_openai import FakeOpenAI

    server = FakeOpenAI(embed=lambda text: embedder.embed([text])[0]).start()
    yield server
    server.stop()


@pytest.fixture
def scripted():
    from tests.support.scripted import ScriptedModel

    return ScriptedModel()


@pytest.fixture
def runtime(settings, store, library, registry):
    from engine.runtime import Runtime

    return Runtime(settings, store, library, registry)


@pytest.fixture
def make_live_agent(runtime, make_agent, embedder):
    """An Agent (the running kind) over a new agent row, driven by the given model."""
    from engine.agent import Agent, AgentOptions

    def make(model, name: str = "ada", options: AgentOptions | None = None, **kwargs):
        # First-message verification is tested on its own; elsewhere it would eat scripted replies.
        options = options or AgentOptions(verify_first_message=False)
        make_agent(name, **kwargs)
        return Agent.load(runtime, name, provider=model, embedder=embedder, options=options)

    return make
