"""Archival search quality features: k, keyword mode, time filters and hints, neighbours, batch insert."""

from __future__ import annotations

import datetime as dt

import pytest

from engine import retrieval
from engine.errors import ToolError
from engine.memory import ArchivalMemory
from engine.store import passages as passages_store
from engine.timehints import TimeHint, time_hints

pytestmark = pytest.mark.both_stores

# A conversation stored one turn a passage, with the time each was said.
TURNS = [
    ("2023-05-08T13:56:00.000+00:00", "Caroline: I went to a support group yesterday, it was powerful."),
    ("2023-05-08T13:57:00.000+00:00", "Melanie: What are the names of your two cats?"),
    ("2023-05-08T13:58:00.000+00:00", "Caroline: Luna and Oliver!"),
    ("2023-06-20T10:00:00.000+00:00", "Melanie: We went camping in the mountains with the kids."),
    ("2023-10-13T18:30:00.000+00:00", "Melanie: The pottery class got cancelled, such a setback."),
    ("2023-10-14T09:00:00.000+00:00", "Caroline: Wow, that's great!"),
    ("2024-01-02T12:00:00.000+00:00", "Caroline: The pottery exhibition opens in January."),
]


@pytest.fixture
def archival(store, agent, embedder):
    memory = ArchivalMemory(store, agent.id, embedder)
    memory.insert_many([(text, {"n": i}, at) for i, (at, text) in enumerate(TURNS)])
    return memory


def texts(results) -> list[str]:
    return [h.passage.text for h in results.hits]


def test_batch_insert_keeps_order_times_and_metadata(archival):
    listed = archival.list()
    assert [p.text for p in listed] == [t for _, t in TURNS]
    assert [p.created_at for p in listed] == [at for at, _ in TURNS]
    assert [p.metadata["n"] for p in listed] == list(range(len(TURNS)))
    assert "2023-05-08" in archival.search("support group").format()  # the model sees when it was said


def test_k_gives_that_many_results_a_page(archival):
    first = archival.search("pottery camping cats", k=3)
    assert len(first.hits) == 3 and first.size == 3
    second = archival.search("pottery camping cats", page=1, k=3)
    assert not {h.passage.id for h in first.hits} & {h.passage.id for h in second.hits}
    assert first.format().startswith(f"Showing 3 of {first.total} results (page 0/")
    assert "\n4. " in second.format()  # numbering goes on across pages of k
    everything = archival.search("pottery camping cats", k=100)
    assert [h.passage.id for h in everything.hits][:6] == [h.passage.id for h in first.hits + second.hits]
    for bad in (0, 101, -1, True, "5"):
        with pytest.raises(ToolError, match="k"):
            archival.search("pottery", k=bad)


def test_keyword_mode_is_bm25_over_content_words(archival):
    found = archival.search("what about the pottery?", mode="keyword")
    # Both pottery passages, and only them: "what", "about", "the" are not searched for.
    assert sorted(texts(found)) == sorted(t for _, t in TURNS if "pottery" in t)
    assert found.total == 2 and all(h.keyword_rank for h in found.hits)
    assert archival.search("the", mode="keyword").total == sum("the " in t.lower() for _, t in TURNS)


def test_time_range_filters_every_mode(archival):
    october = {"start": dt.date(2023, 10, 1), "end": dt.date(2023, 10, 31)}
    for mode in ("hybrid", "vector", "keyword"):
        found = archival.search("pottery", mode=mode, **october)
        assert texts(found)[0] == TURNS[4][1], mode
        assert all(h.passage.created_at.startswith("2023-10") for h in found.hits), mode
    assert archival.search("", **october).total == 2  # listing too
    one_day = archival.search("cats", start=dt.date(2023, 5, 8), end=dt.date(2023, 5, 8))
    assert set(texts(one_day)) <= {t for at, t in TURNS if at.startswith("2023-05-08")}
    with pytest.raises(ToolError, match="before"):
        archival.search("cats", start=dt.date(2023, 5, 9), end=dt.date(2023, 5, 8))


def test_a_named_time_lifts_what_was_said_then(archival):
    # Both pottery passages match the words; the one said in October 2023 comes first only when asked.
    assert texts(archival.search("pottery in January 2024"))[0] == TURNS[6][1]
    assert texts(archival.search("pottery setback in October 2023"))[0] == TURNS[4][1]
    assert texts(archival.search("what happened in October 2023 with pottery"))[0] == TURNS[4][1]


def test_the_answer_after_a_matching_question_is_found(archival):
    # "Luna and Oliver!" shares no word with the question; it rides on the question it answers.
    found = texts(archival.search("names of the cats", k=3))
    assert TURNS[2][1] in found


def test_neighbours_are_the_same_owners_adjacent_passages(store, agent, make_agent, embedder):
    other = make_agent("other")
    mine = ArchivalMemory(store, agent.id, embedder)
    theirs = ArchivalMemory(store, other.id, embedder)
    a = mine.insert("first of mine")[0]
    b = theirs.insert("theirs in between")[0]
    c = mine.insert("second of mine")[0]
    d = mine.insert("third of mine")[0]
    found = passages_store.neighbours(store, [a, b, c, d])
    assert found[c] == (None, d) and found[d] == (c, None)  # b belongs to someone else
    assert found[b] == (None, None) and found[a] == (None, None)
    known: dict = {}  # one search's cache: asking again, even for ids beside the first, answers the same
    assert passages_store.neighbours(store, [c], known) == {c: (None, d)}
    assert passages_store.neighbours(store, [d, a], known) == {d: (c, None), a: (None, None)}
    assert passages_store.neighbours(store, [d + 5], known) == {}  # no such passage


def test_short_chit_chat_loses_vector_similarity():
    assert retrieval.short_penalty("Wow, that's great!") > retrieval.short_penalty(
        "The pottery class at the community centre was cancelled because the old kiln cracked and "
        "the teacher fell ill.") == 0
    assert retrieval.keyword_terms("What did you do?") == ["what", "did", "you", "do"]  # nothing but stopwords
    assert retrieval.keyword_terms("What did Caroline paint?") == ["caroline", "paint"]


@pytest.mark.parametrize("query, covers, misses", [
    ("What did she do on October 13, 2023?", ["2023-10-13", "2023-10-20"], ["2023-10-11", "2023-10-22"]),
    ("the 13th of October 2023", ["2023-10-14"], ["2023-11-01"]),
    ("in 2023-10-13 exactly", ["2023-10-13"], ["2023-12-13"]),
    ("What setback came in October 2023?", ["2023-10-01", "2023-11-07"], ["2023-09-30", "2023-11-10"]),
    ("When did they go camping in June?", ["2021-06-03", "2023-07-05"], ["2023-05-30", "2023-07-20"]),
    ("Where did he travel in 2022?", ["2022-03-01", "2023-01-05"], ["2021-12-31", "2023-02-01"]),
])
def test_time_hints(query, covers, misses):
    hints = time_hints(query)
    assert hints
    for day in covers:
        assert any(h.covers(day + "T12:00:00.000+00:00") for h in hints), day
    for day in misses:
        assert not any(h.covers(day + "T12:00:00.000+00:00") for h in hints), day


@pytest.mark.parametrize("query", [
    "You may go now", "I march on", "February 30, 2023 never was", "no time here", "", "2023" * 3000,
    "in " + "May 2023, " * 500,
])
def test_time_hints_ignore_what_is_no_time(query):
    hints = time_hints(query)
    assert len(hints) <= 8
    if query in ("You may go now", "I march on", "February 30, 2023 never was", "no time here", ""):
        assert hints == []


def test_hint_on_bad_stored_time_is_false():
    assert not TimeHint(month=5).covers("garbage")



def test_term_stats_follow_the_stemmer_and_count_every_passage(store, agent, make_agent, embedder):
    mine = ArchivalMemory(store, agent.id, embedder)
    theirs = ArchivalMemory(store, make_agent("other").id, embedder)
    ids = mine.insert_many([("I did my exercises at dawn", None, None), ("Daily exercise keeps me sane", None, None),
                            ("Nothing to see here", None, None)])
    theirs.insert("another exercise routine")
    held, frequency, documents = passages_store.term_stats(store, ids, ["exercises", "daily", "kiln"])
    assert held == {ids[0]: {"exercises"}, ids[1]: {"exercises", "daily"}}  # "exercise" is the same stem
    assert frequency == {"exercises": 3, "daily": 1, "kiln": 0}  # counted over the whole store, as BM25 does
    assert documents == 4
    assert passages_store.term_stats(store, [], ["exercises"])[0] == {}


def test_term_rows_read_ahead_give_the_same_holders(store, agent, make_agent, embedder):
    """A search reads the rows of the rarer words beside the query's embedding; the holders must not change."""
    mine = ArchivalMemory(store, agent.id, embedder)
    ids = mine.insert_many([("I did my exercises at dawn", None, None), ("Daily exercise keeps me sane", None, None),
                            ("Nothing to see here", None, None), ("a daily kiln firing", None, None)])
    ArchivalMemory(store, make_agent("other").id, embedder).insert("another exercise routine")
    words = ["exercises", "daily", "kiln", "absent"]
    counts = passages_store.term_counts(store, words, rows_up_to=2)
    assert counts.frequency == {"exercises": 3, "daily": 2, "kiln": 1, "absent": 0}
    assert sorted(counts.rows) == ["daily", "kiln"]  # "exercises" is held by 3: left to the index
    assert sorted(counts.rows["daily"].tolist()) == [ids[1], ids[3]]
    wanted = ids[1:]  # the first passage is no candidate: its words must not be reported
    assert passages_store.term_stats(store, wanted, words, counts) == passages_store.term_stats(store, wanted, words)
    held = passages_store.term_stats(store, wanted, words, counts)[0]
    assert held == {ids[1]: {"exercises", "daily"}, ids[3]: {"daily", "kiln"}}


def test_a_candidate_holding_more_rare_words_gains_more():
    found = {1: retrieval.Candidate(1, 0.50), 2: retrieval.Candidate(2, 0.45), 3: retrieval.Candidate(3, 0.48)}
    stats = retrieval.TermStats(
        held={1: frozenset({"kiln"}), 2: frozenset({"kiln", "cracked", "caroline"}), 3: frozenset({"caroline"})},
        frequency={"kiln": 3, "cracked": 5, "caroline": 900}, documents=1000)
    retrieval.cover(found, ["caroline", "kiln", "cracked"], stats)
    assert found[2].score > found[1].score > found[3].score  # all three words beat one rare word
    assert found[3].score - 0.48 < 0.001  # a word nearly every text holds is worth almost nothing
    assert found[2].score - 0.45 == pytest.approx(retrieval.COVER_WEIGHT)


def test_a_match_lifts_the_passages_one_and_two_steps_away():
    chain = {i: (i - 1 if i > 1 else None, i + 1 if i < 9 else None) for i in range(1, 10)}  # passages 1..9 in a row
    found = retrieval.spread_to_neighbours({5: retrieval.Candidate(5, 1.0)}, lambda ids: {i: chain[i] for i in ids})
    scores = {pid: c.score for pid, c in found.items()}
    assert scores == pytest.approx({
        3: retrieval.SECOND_RING * retrieval.PREVIOUS_SHARE, 4: retrieval.PREVIOUS_SHARE, 5: 1.0,
        6: retrieval.NEXT_SHARE, 7: retrieval.SECOND_RING * retrieval.NEXT_SHARE})
    # Between two matches: the nearer share of each ring, and both rings add up.
    found = retrieval.spread_to_neighbours({2: retrieval.Candidate(2, 1.0), 5: retrieval.Candidate(5, 1.0)},
                                           lambda ids: {i: chain[i] for i in ids})
    assert found[3].score == pytest.approx(retrieval.NEXT_SHARE + retrieval.SECOND_RING * retrieval.PREVIOUS_SHARE)
    assert found[2].score == 1.0 and 8 not in found


def test_a_question_passes_its_whole_share_on_but_keeps_less_itself(monkeypatch):
    monkeypatch.setattr(retrieval, "QUESTION_KEEP", 0.3)  # below NEXT_SHARE, so the answer ranks first
    chain = {i: (i - 1 if i > 1 else None, i + 1 if i < 9 else None) for i in range(1, 10)}
    texts = {5: "Which books have you read lately?", 7: "Dune, twice."}
    ranking = retrieval.rank_hybrid(
        [(5, 0.9), (7, 0.1)], [], keyword_complete=True, neighbours=lambda ids: {i: chain[i] for i in ids},
        query="books read", times=lambda ids: {}, texts=lambda ids: {i: texts.get(i, "") for i in ids})
    scores = {c.id: c.score for c in ranking}
    # 6 gets NEXT_SHARE of QUESTION_PASSES x the question's fused score (VECTOR_WEIGHT); 5 keeps QUESTION_KEEP of it
    # and, ranking below its neighbour 6 by then, ADJACENT_KEEP of that.
    assert scores[6] == pytest.approx(retrieval.NEXT_SHARE * retrieval.QUESTION_PASSES * retrieval.VECTOR_WEIGHT)
    assert scores[5] == pytest.approx(retrieval.QUESTION_KEEP * retrieval.VECTOR_WEIGHT * retrieval.ADJACENT_KEEP)
    assert ranking[0].id == 6
    assert retrieval.is_question("Where to?  ") and not retrieval.is_question("Is it? I think so.")


def test_a_candidate_next_to_a_higher_one_keeps_less():
    ranking = [retrieval.Candidate(1, 1.0), retrieval.Candidate(2, 0.9), retrieval.Candidate(7, 0.85)]
    spread = retrieval.spread_out(ranking, {1: (None, 2)})
    assert [c.id for c in spread] == [1, 7, 2]  # 2 sits right after 1: 0.9 x ADJACENT_KEEP < 0.85
    assert spread[2].score == pytest.approx(0.9 * retrieval.ADJACENT_KEEP)
    assert [c.score for c in spread] == sorted((c.score for c in spread), reverse=True)


def test_a_question_asking_for_several_things_is_spread_out_harder(monkeypatch):
    monkeypatch.setattr(retrieval, "NEXT_SHARE", 0.0)  # only spread_out moves scores here
    monkeypatch.setattr(retrieval, "PREVIOUS_SHARE", 0.0)
    chain = {1: (None, 2), 2: (1, None), 7: (None, None)}

    def order(query: str) -> list[int]:
        ranking = retrieval.rank_hybrid(
            [], [(1, 10.0), (2, 9.0), (7, 7.0)], keyword_complete=True,
            neighbours=lambda ids: {i: chain[i] for i in ids if i in chain}, query=query, times=lambda ids: {})
        return [c.id for c in ranking]

    # 2 sits right after 1: 0.9 x ADJACENT_KEEP stays above 7's 0.7 (all relative to 1), 0.9 x LIST_ADJACENT_KEEP does not.
    assert order("Tim's books") == [1, 2, 7]
    assert order("What books has Tim read?") == [1, 7, 2]
    assert retrieval.asks_for_several("How many times did we go hiking?")
    assert retrieval.asks_for_several("Which US cities does John mention visiting?")
    assert not retrieval.asks_for_several("What class does she take?")  # "class" is not a plural
    assert not retrieval.asks_for_several("What is Caroline's identity?")
