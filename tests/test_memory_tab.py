"""The Memory tab's pure parts: the counter, the drafts it carries across redraws, the diff it draws."""

from __future__ import annotations

import dataclasses

import gradio as gr
import pytest

from webapp.memory_tab import counter, diff_html, draft_of, fits, whole_limit, with_draft


@dataclasses.dataclass
class FakeEdit:  # the fields of engine.store.blocks.Edit the diff reads
    old_value: str
    new_value: str
    cause: str = "edited"


def test_counter_says_why_save_is_off():
    assert counter("abc", 3) == "3/3 characters" and fits("abc", 3)
    assert counter("abcd", 3) == "4/3 characters ❌ over the limit by 1: shorten it to save"
    assert not fits("abcd", 3)


def test_drafts_are_kept_per_agent_and_dropped_when_back_to_the_stored_text():
    drafts = with_draft({}, 1, "human", "typed", "stored")
    drafts = with_draft(drafts, 2, "human", "other agent", "x")
    assert draft_of(drafts, 1, "human") == ("typed", "stored")
    assert draft_of(drafts, 2, "human") == ("other agent", "x")
    assert draft_of(drafts, 1, "persona") is None
    back = with_draft(drafts, 1, "human", "stored", "stored")
    assert draft_of(back, 1, "human") is None and draft_of(back, 2, "human") == ("other agent", "x")
    assert draft_of(drafts, 1, "human") == ("typed", "stored")  # the old value is not changed in place


def test_a_draft_longer_than_any_block_is_kept_only_as_far_as_says_too_long():
    from engine.memory import MAX_BLOCK_LIMIT

    kept = draft_of(with_draft({}, 1, "human", "x" * 40_000_000, "stored"), 1, "human")
    assert kept is not None and len(kept[0]) == MAX_BLOCK_LIMIT + 1  # the session held 40 MB per box before
    assert not fits(kept[0], MAX_BLOCK_LIMIT)


def test_the_diff_escapes_every_line_and_marks_additions_and_removals():
    html = diff_html(FakeEdit("same\n<i>gone</i>", "same\n<script>alert(1)</script> & more"))
    assert "<script>" not in html and "<i>" not in html
    assert "class='diff-del'" in html and "-&lt;i&gt;gone&lt;/i&gt;" in html
    assert "+&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "class='diff-same'" in html and "overflow-wrap:anywhere" in html
    assert "no change to the text: limit 10 → 20" in diff_html(FakeEdit("a", "a", "limit 10 → 20"))
    assert "Pick an edit" in diff_html(None)


@pytest.mark.parametrize("value", [None, "", "ten", float("nan"), float("inf"), 2.5, [3]])
def test_a_limit_that_is_not_a_whole_number_is_a_readable_refusal(value):
    with pytest.raises(gr.Error, match="whole number of characters"):
        whole_limit(value)


def test_whole_limits_pass():
    assert whole_limit(100.0) == 100 and whole_limit("30") == 30
