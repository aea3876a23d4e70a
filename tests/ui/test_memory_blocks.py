"""Memory tab: blocks added, resized and removed without losing a draft; Save off over the limit; coloured diffs."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.helpers import create_agent, error_badges, open_tab, wait_until


def _add_block(page: Page, label: str, limit: int | None = None) -> None:
    if not page.get_by_label("New block label").is_visible():
        page.locator("#add-block").get_by_role("button").first.click()
    page.get_by_label("New block label").fill(label)
    if limit is not None:
        page.get_by_label("New block limit (characters)").fill(str(limit))
    page.get_by_role("button", name="Add block").click()


def _manage(page: Page, label: str) -> None:
    button = page.get_by_role("button", name=f"Set limit of {label}")
    if not button.is_visible():
        page.locator(f"#manage-{label}").get_by_role("button").first.click()
    expect(button).to_be_visible()


def test_blocks_are_added_resized_and_removed_and_drafts_survive(page: Page, served):
    from engine.api import MemGPT

    api = MemGPT(runtime=served["runtime"])
    create_agent(page, "Ivy")
    open_tab(page, "Memory")
    human = page.locator("#block-human textarea")
    expect(human).to_be_visible()
    draft = "Name: Ivy\nLikes: ferns (not saved yet)"
    human.fill(draft)

    _add_block(page, "bad label!")
    expect(page.get_by_text(re.compile("Bad block label 'bad label!'"))).to_be_visible()
    expect(page.get_by_label("New block label")).to_have_value("bad label!")  # kept, to be corrected
    _add_block(page, "Projects", 100)
    projects = page.locator("#block-projects textarea")
    expect(projects).to_be_visible()
    expect(page.get_by_text("Added block projects")).to_be_visible()
    expect(page.get_by_label("New block label")).to_have_value("")
    expect(human).to_have_value(draft)  # the redraw kept the draft
    _add_block(page, "HUMAN")
    expect(page.get_by_text("A block named 'human' already exists.")).to_be_visible()
    assert [b.label for b in api.get_core_memory("Ivy")] == ["persona", "human", "projects"]

    projects.fill("garden plan tomatoes")
    page.get_by_role("button", name="Save projects").click()
    expect(page.get_by_text("Saved projects.")).to_be_visible()

    # Save is off while the draft does not fit, and the counter says why.
    save = page.get_by_role("button", name="Save projects")
    projects.fill("y" * 101)
    expect(page.locator("#count-projects")).to_contain_text("101/100 characters ❌ over the limit by 1")
    expect(save).to_be_disabled()
    projects.fill("y" * 100)
    expect(save).to_be_enabled()
    expect(page.locator("#count-projects")).to_have_text(re.compile(r"^\s*100/100 characters\s*$"))
    projects.fill("garden plan tomatoes")

    _manage(page, "projects")
    page.get_by_label("Limit of projects (characters)").fill("10")
    page.get_by_role("button", name="Set limit of projects").click()
    expect(page.get_by_text(re.compile("holds 20 characters, more than a limit of 10"))).to_be_visible()
    assert api.get_core_memory("Ivy")[2].limit == 100
    page.get_by_label("Limit of projects (characters)").fill("50")
    page.get_by_role("button", name="Set limit of projects").click()
    expect(page.locator("#count-projects")).to_contain_text("20/50 characters")
    expect(page.get_by_role("gridcell", name="limit 100 → 50")).to_be_visible()
    expect(human).to_have_value(draft)

    expect(page.get_by_role("button", name="Remove persona", exact=True)).to_have_count(0)  # protected
    expect(page.get_by_role("button", name="Remove human", exact=True)).to_have_count(0)
    _manage(page, "projects")
    page.get_by_role("button", name="Remove projects", exact=True).click()
    confirm = page.locator("#remove-confirm-projects")
    expect(confirm).to_contain_text("Remove projects? Its 20 characters leave the agent's core memory")
    page.get_by_role("button", name="Keep it").click()
    expect(confirm).to_be_hidden()
    assert len(api.get_core_memory("Ivy")) == 3
    projects.fill("a draft that goes with the block")
    page.get_by_role("button", name="Remove projects", exact=True).click()
    expect(confirm).to_contain_text("The box holds changes you did not save; they go with the block.")
    page.get_by_role("button", name="Confirm removal of projects").click()
    expect(projects).to_have_count(0)
    expect(page.get_by_role("gridcell", name="block removed")).to_be_visible()
    wait_until(lambda: [b.label for b in api.get_core_memory("Ivy")] == ["persona", "human"])
    removal = api.memory_history("Ivy", "projects")[0]
    assert (removal.cause, removal.old_value) == ("block removed", "garden plan tomatoes")
    expect(human).to_have_value(draft)

    _add_block(page, "projects", 300)  # the label comes back, with its history, empty
    expect(projects).to_have_value("")
    expect(page.locator("#note-projects")).not_to_contain_text("changed")
    expect(page.get_by_role("gridcell", name="added again")).to_be_visible()
    expect(human).to_have_value(draft)
    expect(error_badges(page)).to_have_count(0)


def test_the_diff_is_coloured_wrapped_and_escaped(page: Page, served):
    from engine.api import MemGPT

    api = MemGPT(runtime=served["runtime"])
    create_agent(page, "Uma")
    api.update_core_memory("Uma", "human", "Name: Uma\nLikes: tea")
    api.update_core_memory("Uma", "human", "Name: Uma\nLikes: <b>coffee</b> <img src=x onerror=alert(1)>\n" + "z" * 600)
    edit = api.memory_history("Uma", "human")[0]
    open_tab(page, "Memory")
    page.get_by_label("Edit number").fill(str(edit.id))
    page.get_by_label("Edit number").press("Enter")
    diff = page.locator("#memory-diff")
    expect(diff.locator(".diff-del")).to_have_text(["-Likes: tea"])
    expect(diff.locator(".diff-add").first).to_have_text("+Likes: <b>coffee</b> <img src=x onerror=alert(1)>")
    expect(diff.locator(".diff-same")).to_have_text(["Name: Uma"])
    expect(diff.locator("b, img")).to_have_count(0)
    added = diff.locator(".diff-add").first.evaluate("e => getComputedStyle(e).backgroundColor")
    removed = diff.locator(".diff-del").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert re.match(r"rgba\(46, 160, 67", added) and re.match(r"rgba\(248, 81, 73", removed)
    # The 600-character line wraps inside the box instead of scrolling it sideways.
    box = diff.locator(".memory-diff")
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    assert diff.locator(".diff-add").last.bounding_box()["height"] > 40
