"""Ranking for memory searches: which words a keyword search uses, and how lists are fused.

Archival search (passages) and recall search (messages) both gather two candidate
lists, the nearest vectors and the best BM25 matches, and rank their union here.
Every rule below was kept because it moved evidence recall on the LoCoMo dev set
(benchmarks/retrieval.py, numbers in docs/benchmarks.md):

- Function words leave the keyword query ("what", "did", "the"): in BM25 they add
  noise to every passage, and a question is mostly made of them.
- Score fusion (each list min-max normalized, then weighted), not reciprocal-rank
  fusion: RRF with the usual k=60 flattens the top ranks so much that what only one
  list finds first falls off the first page.
- Short passages ("Wow, that's great!") embed close to everything; their vector
  similarity is lowered in proportion to how few content words they hold.
- Neighbours share a score: an answer often sits in the passage stored right after
  (or before) the one that matches the question, or one further on, so each
  candidate passes a share of its score to the passages of the same owner up to two
  steps away.
- A time the query names ("in October 2023") boosts what was said then
  (engine/timehints.py), because a passage rarely repeats the date it was said on.
- Coverage: a candidate holding more of the query's rare words gains a little
  (the IDF-weighted share of the query's content words it holds, squared). BM25
  sums term scores, so one rare word repeated can outrank a passage that has
  all of them; this favours the latter.
- A passage that ends in a question mark ("What other hobbies have you found?")
  matches a question well and rarely holds its answer, which is most often stored
  right after it: it keeps QUESTION_KEEP of its own score, while its neighbours get
  their shares of QUESTION_PASSES times its score (keeping half: R@5 0.660 -> 0.674,
  R@10 0.763 -> 0.775; then, on top of spreading out below, passing 1.4 times:
  multi-hop all@10 23.8% -> 25.8%, R@10 0.778 -> 0.773).
- Spread out: a candidate stored right next to a higher-ranked one keeps
  ADJACENT_KEEP of its score (greedy, as maximal marginal relevance), so a match
  and its neighbours do not fill the first page on their own; questions that ask
  for several things said at different times gain (multi-hop questions with all
  their evidence in the top 10: 21.9% -> 23.8%).
- A query that asks for several things ("What instruments does Melanie play?", "How
  many times ...") is spread out harder (LIST_ADJACENT_KEEP): its answers were said
  in different places, and the passages around its best match crowd them out
  (multi-hop all@10 25.8% -> 28.5%, R@5 and R@10 unchanged).
A share of the best scores said on a candidate's own day was tried and removed: it
lifted one-session questions and cost multi-hop ones (docs/benchmarks.md).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import heapq
import math
import re
from collections.abc import Callable
from typing import TypeVar

from engine.store import fts
from engine.timehints import TimeHint, time_hints

T = TypeVar("T")

# The keyword half of a hybrid search runs here while the calling thread embeds the query:
# both spend their time outside the GIL (SQLite's FTS5, numpy's matrix products), so on two
# cores they overlap. Long-lived threads, so each keeps its store connections.
_side = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="search-side")


def alongside(work: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Start `work` on a helper thread; `.result()` gives its value or raises its error."""
    return _side.submit(work)

# Kept short on purpose: only words that carry no topic. Negations and numbers stay.
STOPWORDS = frozenset(
    """
    a about above after again all am an and any are as at be been before being below between both but by
    can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself of off on once
    only or other our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves s t ll d m re ve
    also ever get got go going like kind sort thing things something anything tell know
    """.split()
)

VECTOR_WEIGHT = 0.4  # the rest goes to BM25: with MiniLM, keyword evidence is the stronger of the two
SHORT_PASSAGE_WORDS = 10  # passages with fewer content words than this get a lower vector similarity
SHORT_PENALTY = 0.12  # similarity taken off a passage with no content word at all, pro rata above
NEXT_SHARE = 0.5  # part of a candidate's score the passage stored right after it receives (often the answer)
PREVIOUS_SHARE = 0.3  # ... and the passage stored right before it (often the question it answers)
SECOND_RING = 0.4  # the passages two steps away get this part of those shares
TIME_BOOST = 0.3  # added to candidates said in a time the query names ("in October 2023")
COVER_WEIGHT = 0.3  # added at most, to a candidate holding every content word of the query
QUESTION_KEEP = 0.5  # part of its own score a passage that ends in a question mark keeps ...
QUESTION_PASSES = 1.4  # ... while its neighbours get shares of this times its score (the answer follows it)
ADJACENT_KEEP = 0.8  # part of its score a candidate keeps when one stored right next to it ranks higher
LIST_ADJACENT_KEEP = 0.6  # ... when the query asks for several things (asks_for_several)

# "What/which" and a plural noun before the verb ("What books has Tim read?", "Which US cities does
# John mention?"), or "how many": a question whose answer is a list, said in several places.
_SEVERAL = re.compile(
    r"^\s*(?:what|which)\s+(?:[\w'+/-]+\s+){0,2}?[a-z]+[^s\W]s\s+(?:has|have|does|do|did|is|are|was|were)\b"
    r"|^\s*how\s+many\b",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class TermStats:
    """Which query words the candidates hold, and how common each word is in the index."""

    held: dict[int, frozenset[str]]  # candidate id -> the query words (as given) it holds
    frequency: dict[str, int]  # word -> how many indexed texts hold it
    documents: int  # how many texts are indexed


def content_words(text: str) -> list[str]:
    """The words of `text` that carry meaning: fts.terms without function words."""
    return [w for w in fts.terms(text) if w not in STOPWORDS]


def keyword_terms(query: str) -> list[str]:
    """The words a keyword search uses for `query`: its content words, or all words if it has none."""
    words = content_words(query)
    return words or fts.terms(query)


def short_penalty(text: str) -> float:
    """How much vector similarity a passage loses for being too short to mean much on its own."""
    # Only a count up to SHORT_PASSAGE_WORDS matters: set arithmetic, not content_words' ordered walk
    # (this runs for every vector candidate of every search).
    n = len(set(fts.WORD.findall(text.lower())) - STOPWORDS)
    return SHORT_PENALTY * max(0, SHORT_PASSAGE_WORDS - n) / SHORT_PASSAGE_WORDS


def penalized(nearest: list[tuple[int, float]], texts: dict[int, str]) -> list[tuple[int, float]]:
    """(id, cosine distance) neighbours as (id, similarity less short_penalty), best first; ids without text dropped."""
    return sorted(
        ((pid, (1.0 - d if math.isfinite(d) else 0.0) - short_penalty(texts[pid])) for pid, d in nearest if pid in texts),
        key=lambda item: (-item[1], item[0]),
    )


@dataclasses.dataclass
class Candidate:
    id: int
    score: float = 0.0
    vector_rank: int | None = None
    keyword_rank: int | None = None
    distance: float | None = None


def _normalized(scores: list[float], floor: float | None = None) -> list[float]:
    """Min-max to [0, 1] within one list, so cosine similarities and BM25 scores can be added.

    `floor` is the lowest score anything could have, when the list is known to hold
    every match (a BM25 list shorter than its limit: everything else scores 0).
    """
    if not scores:
        return []
    lo, hi = (min(scores) if floor is None else floor), max(scores)
    return [(x - lo) / (hi - lo) if hi > lo else 1.0 for x in scores]


def fuse(vector: list[tuple[int, float]], keyword: list[tuple[int, float]], *,
         keyword_complete: bool = False) -> dict[int, Candidate]:
    """Score fusion of (id, similarity) and (id, BM25 score) lists, each best first.

    Each list's scores are normalized to [0, 1] and weighted (VECTOR_WEIGHT against
    the rest). Rank fusion (RRF) was measured too and lost: it throws away how far
    ahead the first hit is, which is most of what BM25 knows. `keyword_complete`:
    the keyword list holds every passage that matches at all (it was not cut at its
    limit), so its last match still counts for more than a passage with no match.
    """
    found: dict[int, Candidate] = {}
    for rank, ((pid, similarity), norm) in enumerate(zip(vector, _normalized([s for _, s in vector])), 1):
        c = found.setdefault(pid, Candidate(pid))
        c.vector_rank, c.distance = rank, 1.0 - similarity
        c.score += VECTOR_WEIGHT * norm
    floor = 0.0 if keyword_complete else None
    for rank, ((pid, _), norm) in enumerate(zip(keyword, _normalized([s for _, s in keyword], floor)), 1):
        c = found.setdefault(pid, Candidate(pid))
        c.keyword_rank = rank
        c.score += (1 - VECTOR_WEIGHT) * norm
    return found


def spread_to_neighbours(found: dict[int, Candidate],
                         neighbours: Callable[[list[int]], dict[int, tuple[int | None, int | None]]],
                         known: dict[int, tuple[int | None, int | None]] | None = None) -> dict[int, Candidate]:
    """Give the passages stored near each candidate a share of its score.

    `neighbours(ids)` maps each id to (the id before, the id after), None where there
    is none. The passage right after a candidate gets NEXT_SHARE of its score, the one
    right before PREVIOUS_SHARE, and the ones two steps away SECOND_RING times those
    (an answer often comes a turn later, after a "what do you mean?"). Shares come from
    the scores before spreading, so a run of adjacent passages cannot pile up on
    itself. Within a ring a passage keeps the largest share it is offered; the two
    rings add up, so a passage between two matches (next to one, two away from
    another) gains from both. `known`, when given, receives the (before, after) pairs
    looked up, so the ranking can be spread out (spread_out) without asking the store again.
    """
    first = neighbours(list(found))
    ring = {n for pair in first.values() for n in pair if n is not None}
    second = neighbours(sorted(ring)) if SECOND_RING > 0 and ring else {}
    if known is not None:
        known.update(second)
        known.update(first)
    near: dict[int, float] = {}
    far: dict[int, float] = {}

    def offer(bonus: dict[int, float], n: int | None, share: float) -> None:
        if n is not None and share > 0:
            bonus[n] = max(bonus.get(n, 0.0), share)

    for c in found.values():
        before, after = first.get(c.id, (None, None))
        offer(near, before, PREVIOUS_SHARE * c.score)
        offer(near, after, NEXT_SHARE * c.score)
        if before is not None:
            offer(far, second.get(before, (None, None))[0], SECOND_RING * PREVIOUS_SHARE * c.score)
        if after is not None:
            offer(far, second.get(after, (None, None))[1], SECOND_RING * NEXT_SHARE * c.score)
    for bonus in (near, far):
        for n, extra in bonus.items():
            found.setdefault(n, Candidate(n)).score += extra
    return found


def cover(found: dict[int, Candidate], words: list[str], stats: TermStats) -> None:
    """Add COVER_WEIGHT x (IDF-weighted share of `words` a candidate holds)^2.

    IDF as BM25 computes it, log(1 + (N - n + 0.5) / (n + 0.5)), so a word most texts
    hold (a name said in every other turn) counts for little. Squared: holding one of
    three words should be worth far less than a third of holding all three.
    """
    n = max(stats.documents, 1)
    idf = {w: math.log(1 + max(0.0, n - f + 0.5) / (f + 0.5)) for w in words for f in [stats.frequency.get(w, 0)]}
    total = sum(idf.values())
    if total <= 0:
        return
    for pid, c in found.items():
        held = stats.held.get(pid)
        if held:
            c.score += COVER_WEIGHT * (sum(idf[w] for w in held if w in idf) / total) ** 2


def asks_for_several(query: str) -> bool:
    """Whether `query` asks for a list of things ("What activities has Maria done?"), not for one fact."""
    return _SEVERAL.search(query) is not None


def is_question(text: str) -> bool:
    """Whether a passage ends by asking something: it matches questions well and rarely holds their answer."""
    return text.rstrip().endswith("?")


def spread_out(ranking: list[Candidate], beside: dict[int, tuple[int | None, int | None]],
               keep: float | None = None) -> list[Candidate]:
    """Re-rank so a candidate stored right next to a higher-ranked one keeps `keep` of its score (ADJACENT_KEEP).

    Neighbour shares put a strong match and the passages around it at the top
    together; a question asking for several things ("what books has Tim read?")
    needs the other places they were said too. Greedy, as maximal marginal
    relevance: each pick lowers (once) the candidates beside it, and the next pick
    is the best of what is left, so the scores stay in descending order. `beside`
    maps ids to (the id stored before, after), as spread_to_neighbours learnt them;
    adjacency is checked both ways, so a candidate whose own pair is unknown is
    still found next to a pick whose pair is known.
    """
    keep = ADJACENT_KEEP if keep is None else keep
    taken: set[int] = set()
    near_taken: set[int | None] = set()
    lowered: list[tuple[float, int, Candidate]] = []  # a heap of candidates lowered and not yet placed
    order: list[Candidate] = []
    alone = (None, None)

    def take(c: Candidate) -> None:
        taken.add(c.id)
        near_taken.update(beside.get(c.id, alone))
        order.append(c)

    for c in ranking:  # best first; this runs for every candidate of every search, so no generators
        while lowered and -lowered[0][0] >= c.score:
            take(heapq.heappop(lowered)[2])
        before, after = beside.get(c.id, alone)
        if c.id in near_taken or before in taken or after in taken:
            c.score *= keep
            heapq.heappush(lowered, (-c.score, c.id, c))
        else:
            take(c)
    while lowered:
        take(heapq.heappop(lowered)[2])
    return order


def boost_times(found: dict[int, Candidate], hints: list[TimeHint], times: dict[int, str]) -> None:
    """Add TIME_BOOST to candidates said in a time the query names (`times`: id -> created_at)."""
    if not hints:
        return
    for pid, c in found.items():
        if pid in times and any(h.covers(times[pid]) for h in hints):
            c.score += TIME_BOOST


def rank_hybrid(
    similar: list[tuple[int, float]],
    keyword: list[tuple[int, float]],
    *,
    keyword_complete: bool,
    neighbours: Callable[[list[int]], dict[int, tuple[int | None, int | None]]],
    query: str,
    times: Callable[[list[int]], dict[int, str]],
    terms: Callable[[list[int], list[str]], TermStats] | None = None,
    texts: Callable[[list[int]], dict[int, str]] | None = None,
) -> list[Candidate]:
    """The whole hybrid ranking: fuse, reward coverage, spread to neighbours, boost named times, sort.

    `similar` is (id, similarity) with short_penalty already applied, best first;
    `neighbours(ids)`, `times(ids)` (id -> created_at), `terms(ids, words)` and
    `texts(ids)` look things up in the store (without `terms`, no coverage reward;
    without `texts`, questions keep their whole score).
    """
    found = fuse(similar, keyword, keyword_complete=keyword_complete)
    words = keyword_terms(query)
    if terms is not None and len(words) > 1 and found:  # one word: coverage is what BM25 already ranks by
        cover(found, words, terms(list(found), words))
    # A question is lowered after it has passed its score on, enlarged: the answer is most often stored next to it.
    said = texts(list(found)) if texts is not None and QUESTION_KEEP < 1 else {}
    asked = {pid: found[pid].score for pid, text in said.items() if pid in found and is_question(text)}
    for pid, own in asked.items():
        found[pid].score = QUESTION_PASSES * own
    beside: dict[int, tuple[int | None, int | None]] = {}
    found = spread_to_neighbours(found, neighbours, beside)
    for pid, own in asked.items():
        found[pid].score -= (QUESTION_PASSES - QUESTION_KEEP) * own
    hints = time_hints(query)
    if hints:
        boost_times(found, hints, times(list(found)))
    keep = LIST_ADJACENT_KEEP if asks_for_several(query) else ADJACENT_KEEP
    return spread_out(ranked(found), beside, keep) if keep < 1 else ranked(found)


def ranked(found: dict[int, Candidate]) -> list[Candidate]:
    """Best first; equal scores in storage order, so pages are stable."""
    return sorted(found.values(), key=lambda c: (-c.score, c.id))
