"""Persona labels grounded in evidence.

* ``ctfidf_terms``: BERTopic-style class-based TF-IDF -- the terms that set a cluster's
  memories apart from the other clusters' (``ctfidf_table`` with their scores and lifts).
* ``persona_explanations``: why a persona is itself -- its c-TF-IDF terms with weights and
  its mix of sources against the whole window's.
* ``select_evidence``: a persona's evidence is its memories closest to the centroid.
* ``label_persona``: role + domain + focus ("Tennis spectator focused on racket and
  wimbledon"): the domain from the categories the persona shows far more than everyone
  (``lexicon``), the role from its action mix against everyone's, the focus from distinctive
  phrases that speak for many of its members and occur in at least ``MIN_SUPPORT`` evidence
  memories; the description is a list of claims, each a share of its memories.
* ``check_label_grounded``: the construction rule as an invariant (raises when broken).
* ``held_out_memories``: the seeded sample of other members a label is scored on, never written from.
* ``person_personas``: each person's personas, weighted, with a person-specific label.

A term "occurs" in a text when its words appear there in order as whole words, after
lower-casing and treating every run of non-alphanumeric characters as a space.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import polars as pl
import scipy.sparse as sp

from dagster_project.science.lexicon import (
    ACTION_ROLES,
    NEUTRAL_ROLE,
    PLAYER_DOMAINS,
    PURCHASE_ACTIONS,
    SPECTATOR_ROLE,
    STOREFRONT_DOMAIN,
    VIEWER_ROLE,
    VIEWING_ACTIONS,
    action_phrase,
    display_name,
    domain_of,
    is_ticket_category,
)
from dagster_project.science.ordered import ordered_sum
from dagster_project.science.tokens import ngram_counts

MIN_SUPPORT = 2
UNLABELLED = "unlabelled"
# Words: a letter, then letters or digits ("ps5" yes, "97" no).
_TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W_]+\b"


def normalised(texts: pl.Expr | pl.Series) -> pl.Expr | pl.Series:
    """Lower-case text with single spaces between words and a space at both ends."""
    words = texts.str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", " ").str.strip_chars()
    return " " + words + " "


def ctfidf_terms(
    docs_per_cluster: Mapping[Hashable, Sequence[str]],
    top_n: int = 10,
    min_docs: int = MIN_SUPPORT,
    ngram_range: tuple[int, int] = (1, 2),
) -> dict[Hashable, list[str]]:
    """Top ``top_n`` c-TF-IDF terms per cluster, best first (see ``ctfidf_table``)."""
    table = ctfidf_table(docs_per_cluster, top_n, min_docs, ngram_range)
    return {cluster: [term.term for term in terms] for cluster, terms in table.items()}


class TermScore(NamedTuple):
    term: str
    weight: float  # c-TF-IDF
    lift: float  # share of the cluster's documents with the term over the share of all documents
    exclusivity: float = 1.0  # share of all documents with the term that are the cluster's


def ctfidf_table(
    docs_per_cluster: Mapping[Hashable, Sequence[str]],
    top_n: int = 10,
    min_docs: int = MIN_SUPPORT,
    ngram_range: tuple[int, int] = (1, 2),
) -> dict[Hashable, list[TermScore]]:
    """Top ``top_n`` c-TF-IDF terms per cluster with their scores and lifts, best first.

    A term counts once per document (a memory that repeats a title ten times is one
    vote), tf is the term's share of the cluster's counts and idf = log(1 + A / f),
    with A the mean count per cluster and f the term's count over all clusters.
    Terms found in fewer than ``min_docs`` of the cluster's documents are left out.
    """
    clusters = list(docs_per_cluster)
    # One column of every cluster's documents: a Python list of 100k+ strings costs more than the counting.
    docs = pl.concat([pl.Series([], dtype=pl.String), *(pl.Series(docs_per_cluster[c], dtype=pl.String) for c in clusters)])
    owners = np.repeat(np.arange(len(clusters)), [len(docs_per_cluster[c]) for c in clusters])
    return ctfidf_from_presence(*term_presence(docs, ngram_range), owners, clusters, top_n, min_docs)


def term_presence(
    texts: pl.Series | Sequence[str], ngram_range: tuple[int, int] = (1, 2)
) -> tuple[sp.csr_matrix, np.ndarray]:
    """(texts x terms, 1 where a text has the term; the sorted vocabulary) in c-TF-IDF's words.

    Counted once for a window, it serves the personas' and their parents' ``ctfidf_from_presence``.
    """
    return ngram_counts(texts, ngram_range, _TOKEN_PATTERN, binary=True)


def ctfidf_from_presence(
    presence: sp.csr_matrix,
    vocabulary: np.ndarray,
    owners: np.ndarray,
    clusters: Sequence[Hashable],
    top_n: int = 10,
    min_docs: int = MIN_SUPPORT,
) -> dict[Hashable, list[TermScore]]:
    """``ctfidf_table`` from a ``term_presence`` matrix: one row per document, ``owners`` the index in
    ``clusters`` of each row's cluster. Terms no row has score 0 and change nothing."""
    if vocabulary.size == 0:  # no document has a single word
        return {cluster: [] for cluster in clusters}
    n_docs = presence.shape[0]
    sizes = np.bincount(owners, minlength=len(clusters))
    membership = sp.csr_matrix((np.ones(n_docs), (owners, np.arange(n_docs))), shape=(len(clusters), n_docs))
    counts = np.asarray((membership @ presence).todense())
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + counts.sum() / len(clusters) / np.maximum(counts.sum(axis=0), 1))
    scores = np.where(counts >= min_docs, tf * idf, 0.0)
    lifts = (counts / np.maximum(sizes, 1)[:, None]) / np.maximum(counts.sum(axis=0) / max(n_docs, 1), 1e-12)
    exclusivity = counts / np.maximum(counts.sum(axis=0), 1)
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :top_n]
    return {
        cluster: [TermScore(str(vocabulary[j]), float(scores[row, j]), float(lifts[row, j]), float(exclusivity[row, j]))
                  for j in ranked[row] if scores[row, j] > 0]
        for row, cluster in enumerate(clusters)
    }


EXPLANATION_DTYPE = pl.Struct({
    "terms": pl.List(pl.Struct({"term": pl.String, "weight": pl.Float64})),
    "sources": pl.List(pl.Struct({"source": pl.String, "persona_share": pl.Float64, "population_share": pl.Float64})),
})


def persona_explanations(
    memories: pl.DataFrame, term_weights: Mapping[Hashable, Sequence[tuple[str, float]]]
) -> pl.DataFrame:
    """What distinguishes each persona: its c-TF-IDF terms with weights, and its sources against everyone's.

    ``memories``: memory_id, persona_id, sources, weight (recency weight). A source's
    share is the weighted share of memories that contain it, in the persona and in the
    whole window, so "iot 62% vs 18%" reads as "this persona is seen on devices".
    Columns: persona_id, explanation (``EXPLANATION_DTYPE``).
    """
    by_source = memories.select("persona_id", "weight", "sources").explode("sources").rename({"sources": "source"})
    population = by_source.group_by("source").agg(ordered_sum(pl.col("weight")) / memories["weight"].sort().sum())
    persona_totals = memories.group_by("persona_id").agg(ordered_sum(pl.col("weight")).alias("total"))
    sources = (
        by_source.group_by("persona_id", "source").agg(ordered_sum(pl.col("weight")))
        .join(persona_totals, on="persona_id")
        .join(population.rename({"weight": "population_share"}), on="source")
        .with_columns(persona_share=pl.col("weight") / pl.col("total"))
        .sort("persona_id", "persona_share", "source", descending=[False, True, False])
        .group_by("persona_id", maintain_order=True)
        .agg(sources=pl.struct("source", "persona_share", "population_share"))
    )
    terms = pl.DataFrame(
        [{"persona_id": persona_id, "terms": [{"term": term, "weight": weight} for term, weight in pairs]}
         for persona_id, pairs in term_weights.items()],
        schema={"persona_id": pl.Int64, "terms": EXPLANATION_DTYPE.to_schema()["terms"]},
    )
    return (
        persona_totals.select("persona_id")
        .join(terms, on="persona_id", how="left")
        .join(sources, on="persona_id", how="left")
        .select("persona_id", pl.struct("terms", "sources").cast(EXPLANATION_DTYPE).alias("explanation"))
    )


def select_evidence(assignments: pl.DataFrame, n: int = 10) -> pl.DataFrame:
    """The ``n`` memories closest to each persona's centroid.

    Input columns memory_id, persona_id, distance; output persona_id,
    evidence_memory_ids (closest first; ties broken by memory_id).
    """
    return (
        assignments.sort("persona_id", "distance", "memory_id")
        .group_by("persona_id", maintain_order=True)
        .agg(pl.col("memory_id").head(n).alias("evidence_memory_ids"))
    )


def held_out_memories(
    assignments: pl.DataFrame, evidence: pl.DataFrame, n: int = 50, seed: int = 0, share: float = 0.0
) -> pl.DataFrame:
    """A seeded random sample of each persona's members that are not its evidence.

    The label is written from the evidence, so scoring it there proves nothing; these
    memories score it honestly. ``assignments``: memory_id, persona_id (plus any
    columns to keep); ``evidence``: persona_id, evidence_memory_ids. Keeps ``n`` per
    persona, or ``share`` of its other members when that is more, or all of them when
    it has fewer than ``n``.
    """
    used = evidence.explode("evidence_memory_ids").select("persona_id", memory_id="evidence_memory_ids")
    draw = np.random.default_rng(seed).random(assignments.height)
    return (
        assignments.with_columns(_draw=pl.Series(draw))
        .join(used, on=["persona_id", "memory_id"], how="anti")
        .sort("persona_id", "_draw")
        .filter(pl.int_range(pl.len()).over("persona_id") < pl.max_horizontal(pl.lit(n), (pl.len() * share).ceil()
                                                                                .over("persona_id")))
        .drop("_draw")
    )


def check_label_grounded(label: PersonaLabel, evidence_texts: Sequence[str],
                         evidence_categories: Sequence[Sequence[str]]) -> None:
    """The construction rule as an invariant: every focus term occurs in at least ``MIN_SUPPORT``
    evidence texts, and at least ``MIN_SUPPORT`` evidence memories have a category of the label's
    domain. Raises ``ValueError`` naming what is not supported."""
    check_labels_grounded(
        pl.DataFrame({"persona_id": [0], "label": [label.label], "domain": [label.domain],
                      "domain_categories": [label.domain_categories], "focus": [label.focus]},
                     schema={"persona_id": pl.Int64, "label": pl.String, "domain": pl.String,
                             "domain_categories": pl.List(pl.String), "focus": pl.List(pl.String)}),
        pl.DataFrame({"text": list(evidence_texts), "categories": list(evidence_categories)},
                     schema={"text": pl.String, "categories": pl.List(pl.String)}).with_columns(persona_id=pl.lit(0)),
    )


def check_labels_grounded(labels: pl.DataFrame, evidence: pl.DataFrame) -> None:
    """``check_label_grounded`` of every persona at once, raising for the first of ``labels`` (persona_id,
    label, domain, domain_categories, focus) that its ``evidence`` (persona_id, text, categories) does not support."""
    evidence = evidence.select("persona_id", "categories", text=normalised(pl.col("text").fill_null("")))
    focus = (
        labels.select("persona_id", "focus", order=pl.int_ranges(pl.col("focus").list.len()))
        .explode("focus", "order").drop_nulls("focus")
        .join(evidence, on="persona_id", how="left")
        .group_by("persona_id", "focus", "order")
        .agg(support=pl.col("text").str.contains(normalised(pl.col("focus").first()), literal=True).sum())
        .filter(pl.col("support") < MIN_SUPPORT)
        .sort("order")
        .group_by("persona_id", maintain_order=True).agg(unsupported_focus="focus")
    )
    domain = (
        labels.filter(pl.col("domain").is_not_null()).select("persona_id", "domain", "domain_categories")
        .join(evidence, on="persona_id", how="left")
        .group_by("persona_id")
        .agg(pl.col("domain").first(), support=(pl.col("categories").cast(pl.List(pl.String))
                                                .list.set_intersection("domain_categories").list.len() > 0).sum())
        .filter(pl.col("support") < MIN_SUPPORT)
        .select("persona_id", unsupported_domain=pl.lit("domain ") + pl.col("domain"))
    )
    unsupported = (
        labels.select("persona_id", "label")
        .join(focus, on="persona_id", how="left", maintain_order="left")
        .join(domain, on="persona_id", how="left", maintain_order="left")
        .filter(pl.col("unsupported_focus").is_not_null() | pl.col("unsupported_domain").is_not_null())
    )
    if unsupported.height:
        first = unsupported.row(0, named=True)
        terms = [*(first["unsupported_focus"] or []), *([first["unsupported_domain"]] if first["unsupported_domain"]
                                                        else [])]
        raise ValueError(f"label {first['label']!r} uses terms its evidence does not support: {terms}")


# A memory's facts a label and its claims are grounded in: claim statistics name them "kind:value".
FACT_COLUMNS = {"category": "categories", "action": "actions", "source": "sources"}
DOMAIN_LIFT = 2.0  # a category names the domain only where the persona shows it twice as often as everyone
MIN_DOMAIN_SHARE = 0.1
ROLE_LIFT = 1.5  # an action earns a role where the persona's share of it is 1.5x the population's
MIN_ROLE_SHARE = 0.1
SPECTATOR_SHARE = 1 / 3  # a ticket category in a third of the memories makes a spectator
QUALIFIER_MARGIN = 1.25  # "frequent" needs 1.25x the upper quartile of memories per member
FOCUS_SIZE = 2
FOCUS_LIFT = 3.0  # a focus phrase is in 3x as many of the persona's memories as of everyone's
FOCUS_MIN_EXCLUSIVITY = 0.5  # and most memories that mention it are the persona's ("tv" of every TV buyer is not)
FOCUS_MIN_COVERAGE = 0.1  # and speaks for at least a tenth of the members
MEASURE_SHARE = 0.9  # a word nearly always right after a number is a unit or a model number's tail ("65 inch")
SINGLE_ITEM_CONTEXT = 0.5  # a phrase beside the same word in over half its occurrences is part of one item's name...
DOMINANT_COVERAGE = 0.8  # ...allowed only when it speaks for most members
FOCUS_JOINER = " focused on "
HOLD = 0.75  # yesterday's wording stays while it clears 75% of the bars that chose it
CLAIM_TOLERANCE = 0.05  # a claim holds on held-out memories when its share is within 5 points of theirs


CLAIM_DTYPE = pl.List(pl.Struct({"text": pl.String, "statistic": pl.String, "value": pl.Float64}))


@dataclass(frozen=True)
class PersonaLabel:
    """Role + domain + focus, and a description whose every number is a claim.

    ``label_terms``: the domain and the focus terms (what label-term precision scores);
    ``domain_categories``: the categories of the domain the persona's memories show; ``claims``:
    dicts of text, statistic ("category:<c>", "action:<a>" or "source:<s>": the share of the
    persona's memories with that fact) and value (the share the text states).
    """

    label: str
    description: str
    label_terms: list[str]
    role: str | None = None
    domain: str | None = None
    domain_categories: list[str] = field(default_factory=list)
    focus: list[str] = field(default_factory=list)
    qualifier: str | None = None
    claims: list[dict] = field(default_factory=list)


def fact_shares(memories: pl.DataFrame, by: str = "persona_id") -> pl.DataFrame:
    """Share of the memories of each ``by`` group showing each fact (a category, an action, a source).

    ``memories``: ``by``, memory_id, categories, actions, sources (lists, distinct per memory).
    Columns: ``by``, statistic ("category:tennis_rackets", "action:order", "source:web"), kind,
    value, share, n (the group's memories).
    """
    sizes = memories.group_by(by).agg(pl.len().alias("n"))
    facts = pl.concat([
        memories.select(by, pl.col(column).cast(pl.List(pl.String)).alias("value"), kind=pl.lit(kind))
        .explode("value")
        for kind, column in FACT_COLUMNS.items()
    ]).drop_nulls("value")
    return (
        facts.group_by(by, "kind", "value").agg(pl.len().alias("count"))
        .join(sizes, on=by)
        .select(by, (pl.col("kind") + ":" + pl.col("value")).alias("statistic"), "kind", "value",
                (pl.col("count") / pl.col("n")).alias("share"), "n")
    )




def persona_domain(shares: pl.DataFrame, population: pl.DataFrame) -> list[tuple[str, list[str]]]:
    """Candidate domains, best first, each with its categories: the domains of the categories the
    persona shows at least ``DOMAIN_LIFT`` times as often as the population, ranked by their summed share.

    ``shares``/``population``: ``fact_shares`` rows (statistic, kind, value, share) of the persona and of everyone.
    """
    return persona_domains(shares.with_columns(_persona=pl.lit(0)), population, by="_persona").get(0, [])


def persona_domains(
    shares: pl.DataFrame, population: pl.DataFrame, by: str = "persona_id"
) -> dict[Hashable, list[tuple[str, list[str]]]]:
    """``persona_domain`` of every ``by`` group of ``shares`` at once (``fact_shares`` rows of many personas)."""
    categories = (
        shares.filter(pl.col("kind") == "category")
        .join(population.select("statistic", population_share="share"), on="statistic", how="left")
        .filter((pl.col("share") >= MIN_DOMAIN_SHARE)
                & (pl.col("share") >= DOMAIN_LIFT * pl.col("population_share").fill_null(0.0)))
    )
    names = categories["value"].unique()
    domains = dict(zip(names.to_list(), map(domain_of, names.to_list()), strict=True))
    ranked = (
        categories.with_columns(pl.col("value").replace_strict(domains, return_dtype=pl.String).alias("domain"))
        .drop_nulls("domain")
        .group_by(by, "domain")
        .agg(ordered_sum(pl.col("share")), pl.col("value").sort().alias("categories"))
        .sort(by, "share", "domain", descending=[False, True, False])
    )
    candidates: dict[Hashable, list[tuple[str, list[str]]]] = {}
    for group, domain, values in ranked.select(by, "domain", "categories").iter_rows():
        candidates.setdefault(group, []).append((domain, values))
    return candidates


def persona_role(shares: pl.DataFrame, population: pl.DataFrame, domain: str | None,
                 domain_categories: Sequence[str], previous_role: str | None = None) -> str:
    """The role noun: from an action the persona shows ``ROLE_LIFT`` times as often as everyone
    (buyer, fan, support-seeker, athlete or player, researcher when it searches without buying),
    else spectator where a ticket category of its domain is in a third of its memories, else
    neutral: viewer where viewing is its commonest action, enthusiast otherwise.

    A new role must clear its bar with the share's lower bound (two standard errors below it), so
    a small persona's noise earns no role; ``previous_role`` (yesterday's) is kept while its share
    still clears ``HOLD`` of the bar, so a persona near a bar does not switch roles from day to day.
    """
    return role_of(one_persona_facts(shares, population), domain, domain_categories, previous_role)


class PersonaFacts(NamedTuple):
    """A persona's ``fact_shares`` rows as mappings, what its label's decisions read of them."""

    n: int  # its memories
    share: dict[str, float]  # statistic ("action:order") -> share of its memories with the fact
    lift: dict[str, float]  # statistic -> that share over the population's (inf where no one else has it)

    def of_kind(self, kind: str, values: Mapping[str, float]) -> dict[str, float]:
        """``values`` of the facts of one kind, by value ("order" of "action:order")."""
        return {statistic.split(":", 1)[1]: value for statistic, value in values.items()
                if statistic.split(":", 1)[0] == kind}


def persona_facts(shares: pl.DataFrame, population: pl.DataFrame, by: str = "persona_id") -> dict[Hashable, PersonaFacts]:
    """``PersonaFacts`` of every ``by`` group of ``shares`` (``fact_shares`` rows of many personas) at once."""
    rows = (
        shares.join(population.select("statistic", population_share="share"), on="statistic", how="left")
        .select(by, "n", "statistic", "share",
                lift=(pl.col("share") / pl.col("population_share")).fill_null(float("inf")))
    )
    facts: dict[Hashable, PersonaFacts] = {}
    for group, n, statistic, share, lift in rows.iter_rows():
        persona = facts.setdefault(group, PersonaFacts(int(n), {}, {}))
        persona.share[statistic] = share
        persona.lift[statistic] = lift
    return facts


def one_persona_facts(shares: pl.DataFrame, population: pl.DataFrame) -> PersonaFacts:
    """``PersonaFacts`` of one persona's ``fact_shares`` rows (none without them)."""
    return persona_facts(shares.with_columns(_persona=pl.lit(0)), population, by="_persona").get(
        0, PersonaFacts(0, {}, {}))


def role_of(facts: PersonaFacts, domain: str | None, domain_categories: Sequence[str],
            previous_role: str | None = None) -> str:
    """``persona_role`` from the persona's ``PersonaFacts``."""
    lift = facts.of_kind("action", facts.lift)
    share = facts.of_kind("action", facts.share)
    category_share = facts.of_kind("category", facts.share)
    n = facts.n

    def lower_bound(p: float) -> float:
        return p - 2 * np.sqrt(p * (1 - p) / max(n, 1))

    def role_at(bar: float) -> str | None:
        best_role, best_lift = None, ROLE_LIFT * bar
        for group, role in ACTION_ROLES:
            for action in sorted(group & set(lift)):
                sure = lower_bound(share[action]) / share[action] if bar == 1.0 and share[action] > 0 else 1.0
                if share[action] * sure < MIN_ROLE_SHARE * bar or lift[action] * sure < best_lift:
                    continue
                if role == "researcher" and any(lift.get(buy, 0.0) >= 1.0 for buy in PURCHASE_ACTIONS):
                    continue
                best_lift = lift[action]
                best_role = "player" if role == "athlete" and domain in PLAYER_DOMAINS else role
        return best_role

    def is_spectator(bar: float) -> bool:
        return any(is_ticket_category(c) and (lower_bound(category_share.get(c, 0.0)) if bar == 1.0
                                              else category_share.get(c, 0.0)) >= SPECTATOR_SHARE * bar
                   for c in domain_categories)

    commonest = max(share, key=lambda action: (share[action], action), default=None)
    neutral = VIEWER_ROLE if commonest in VIEWING_ACTIONS else NEUTRAL_ROLE
    role = role_at(1.0) or (SPECTATOR_ROLE if is_spectator(1.0) else neutral)
    if previous_role is None or previous_role == role:
        return role
    if previous_role == SPECTATOR_ROLE:
        still = role == neutral and is_spectator(HOLD)
    elif previous_role in (NEUTRAL_ROLE, VIEWER_ROLE):
        still = False  # a role that stands out today replaces a neutral one
    else:  # an action role holds while its actions clear the relaxed bars and no other action role stands out
        group = next((group for group, noun in ACTION_ROLES
                      if noun == previous_role or (noun == "athlete" and previous_role == "player")), frozenset())
        still = role_at(1.0) is None and any(
            share[action] >= MIN_ROLE_SHARE * HOLD and lift[action] >= ROLE_LIFT * HOLD
            for action in group & set(lift)
        )
    return previous_role if still else role


def distinctive_phrases(candidates: Sequence[TermScore], previous_focus: Sequence[str] = ()) -> list[TermScore]:
    """The candidates distinctive enough for a focus: in ``FOCUS_LIFT`` times as many of the persona's
    memories as of everyone's and mostly the persona's (``FOCUS_MIN_EXCLUSIVITY``); ``HOLD`` of both bars
    for yesterday's phrases."""
    return [candidate for candidate in candidates
            if candidate.lift >= FOCUS_LIFT * _bar(candidate.term, previous_focus)
            and candidate.exclusivity >= FOCUS_MIN_EXCLUSIVITY * _bar(candidate.term, previous_focus)]


class PhraseStatistics(NamedTuple):
    support: int  # evidence texts the phrase occurs in
    coverage: float  # share of the persona's people with a writing memory that has it
    # Measured only where the phrase could be a focus (support and coverage clear their lowest bars), else None:
    after_number_share: float | None  # share of its occurrences right after a number ("65 inch")
    fixed_neighbour_share: float | None  # share of its occurrences beside its commonest neighbour, on the likelier side


def phrase_statistics(
    phrases: pl.DataFrame, evidence: pl.DataFrame, writing: pl.DataFrame
) -> dict[Hashable, dict[str, PhraseStatistics]]:
    """What ``focus_phrases`` asks of each candidate phrase, for every persona at once (no loop per
    persona or phrase): per persona_id and term, its ``PhraseStatistics``.

    ``phrases``: persona_id, term; ``evidence``: persona_id, text (the persona's evidence memories);
    ``writing``: persona_id, person_id, text (the memories its label is written from). A phrase
    "occurs" as whole words in order (see the module docstring); its occurrences are the
    non-overlapping matches of " phrase " in the normalised text.
    """
    phrases = phrases.select(pl.col("persona_id"), pl.col("term").cast(pl.String)).unique()
    needle = " " + pl.col("term") + " "
    support = (
        phrases.join(evidence.select("persona_id", text=normalised(pl.col("text").fill_null(""))), on="persona_id",
                     how="left")
        .group_by("persona_id", "term")
        .agg(support=pl.col("text").str.contains(needle, literal=True).sum().cast(pl.Int64))
    )
    haystack = writing.select("persona_id", "person_id", text=normalised(pl.col("text").fill_null("")))
    people = haystack.group_by("persona_id").agg(people=pl.col("person_id").n_unique())
    occurrences = (
        support.filter(pl.col("support") >= MIN_SUPPORT).select("persona_id", "term")
        .join(haystack, on="persona_id")
        .filter(pl.col("text").str.contains(needle, literal=True))  # a third of the cost of counting everywhere
        .with_columns(total=pl.col("text").str.count_matches(needle, literal=True))
    )
    coverage = (
        occurrences.group_by("persona_id", "term")
        .agg(pl.col("person_id").n_unique().alias("with_phrase"), pl.col("total").sum())
        .join(people, on="persona_id")
        .select("persona_id", "term", "total", coverage=pl.col("with_phrase") / pl.col("people"))
    )
    shapes = _phrase_shapes(
        occurrences.join(coverage.filter(pl.col("coverage") >= FOCUS_MIN_COVERAGE * HOLD), on=["persona_id", "term"],
                         how="semi").select("persona_id", "term", "text")
    ).join(coverage.select("persona_id", "term", "total"), on=["persona_id", "term"]).select(
        "persona_id", "term",
        after_number_share=pl.col("after_number") / pl.col("total"),
        fixed_neighbour_share=pl.max_horizontal(pl.col("before", "after").fill_null(0)) / pl.col("total"),
    )
    table = (
        support.join(coverage.drop("total"), on=["persona_id", "term"], how="left")
        .join(shapes, on=["persona_id", "term"], how="left")
        .with_columns(pl.col("coverage").fill_null(0.0))
    )
    statistics: dict[Hashable, dict[str, PhraseStatistics]] = {}
    for persona_id, term, *values in table.select("persona_id", "term", *PhraseStatistics._fields).iter_rows():
        statistics.setdefault(persona_id, {})[term] = PhraseStatistics(*values)
    return statistics


def _phrase_shapes(rows: pl.DataFrame) -> pl.DataFrame:
    """Per persona_id and term of ``rows`` (persona_id, term, normalised text that has the phrase): the
    matches of `` <number> phrase `` (after_number), and those of ``<word> phrase `` (before) and
    `` phrase <word>`` (after) beside the commonest neighbouring word.

    Counted as a left-to-right regular expression scan counts them (a match overlapping the one found
    before it is not seen), but on the texts' words: compiling a regular expression per phrase cost
    more than all the rest of the labelling. The joins run on numbers (word codes, one number per
    persona_id and term) and stream: on a 1M-event day's 442k rows, 1.3 s and +0.3 GiB, where joins on
    the strings, held whole, took 2.1-2.3 s and +0.7-0.8 GiB.
    """
    # Texts and words numbered by categories of this call only (the process-wide ones would keep every text and
    # word for good), each numbering in one cast: a numbering lives only as long as a column of it does.
    pairs = rows.select("persona_id", "term").unique().with_row_index("pair")
    rows = rows.with_row_index("row").with_columns(
        text_id=pl.col("text").cast(pl.Categorical(pl.Categories.random())).to_physical()
    ).join(pairs, on=["persona_id", "term"])
    # Each distinct text split into words once: a persona's texts come back for each of its phrases.
    words = (
        rows.unique("text_id").select("text_id", word=pl.col("text").str.strip_chars(" ").str.split(" "))
        .with_columns(position=pl.int_ranges(pl.col("word").list.len(), dtype=pl.Int32))
        .explode("word", "position")
    )
    phrase_words = (
        pairs.select("pair", phrase_word=pl.col("term").str.split(" "))
        .with_columns(offset=pl.int_ranges(pl.col("phrase_word").list.len(), dtype=pl.Int32))
        .explode("phrase_word", "offset")
    )
    codes = pl.concat([words["word"], phrase_words["phrase_word"]]).cast(
        pl.Categorical(pl.Categories.random())).to_physical()
    words = words.with_columns(numeric=pl.col("word").str.contains(r"^\d"), word=codes[:words.height])
    phrase_words = phrase_words.with_columns(phrase_word=codes[words.height:])
    lengths = phrase_words.group_by("pair").agg(length=pl.len().cast(pl.Int32))
    # One lazy query from here to the matches, run by the streaming engine: the joins with every word of every
    # text then work through batches, not whole tables at once.
    words_of = words.lazy()
    phrase_words_of = phrase_words.lazy()
    # Where a phrase starts: its first word, then each of its further words in place.
    starts = rows.lazy().select("row", "text_id", "pair").join(
        phrase_words_of.filter(pl.col("offset") == 0).select("pair", word="phrase_word"), on="pair"
    ).join(words_of.select("text_id", "word", "position"), on=["text_id", "word"]).select(
        "row", "text_id", "pair", "position")
    for offset in range(1, (phrase_words["offset"].max() or 0) + 1):
        starts = (
            starts.join(phrase_words_of.filter(pl.col("offset") == offset).drop("offset"), on="pair", how="left")
            .join(words_of.select("text_id", "word", position=pl.col("position") - offset),
                  on=["text_id", "position"], how="left")
            .filter(pl.col("phrase_word").is_null() | (pl.col("word") == pl.col("phrase_word")))
            .select("row", "text_id", "pair", "position")
        )
    matches = (
        starts.join(lengths.lazy(), on="pair")
        .with_columns(end=pl.col("position") + pl.col("length"))
        .join(words_of.select("text_id", before="word", before_numeric="numeric", position=pl.col("position") + 1),
              on=["text_id", "position"], how="left")
        .join(words_of.select("text_id", after="word", end="position"), on=["text_id", "end"], how="left")
        .sort("row", "position")
        .collect(engine="streaming")
    )
    # Where the scan resumes decides the next match: `` <number> phrase `` and ``<word> phrase `` end past
    # the space behind the phrase, `` phrase <word>`` on the word after it, so the next match starts at
    # least that many words on (`` <number>`` needs the space before its number too).
    after_number = _scanned(matches.filter(pl.col("before_numeric")), gap=pl.col("length") + 2)
    sides = [
        _scanned(matches.drop_nulls(side), gap=pl.col("length") + 1)
        .group_by("pair", side).len()
        .group_by("pair").agg(pl.col("len").max().alias(side))
        for side in ("before", "after")
    ]
    return (
        pairs.join(after_number.group_by("pair").agg(after_number=pl.len()), on="pair", how="left")
        .join(sides[0], on="pair", how="left")
        .join(sides[1], on="pair", how="left")
        .select("persona_id", "term", pl.col("after_number").fill_null(0), "before", "after")
    )


def _scanned(matches: pl.DataFrame, gap: pl.Expr) -> pl.DataFrame:
    """The ``matches`` (row, position, sorted) a left-to-right scan finds: one is passed over when a
    found match of its row starts fewer than ``gap`` words before it.

    Resolved a round at a time, all rows at once: a match with no undecided one within its gap before
    it is found unless a found one is there; one with a found match within its gap is passed over.
    """
    row = matches["row"].to_numpy().astype(np.int64)
    position = matches["position"].to_numpy().astype(np.int64)
    gaps = matches.select(gap).to_series().to_numpy().astype(np.int64)
    # One number line for all rows, rows far enough apart that no gap reaches across two.
    spacing = int(position.max(initial=0) + gaps.max(initial=0) + 1)
    place = row * spacing + position
    found = np.zeros(row.size, dtype=bool)
    undecided = np.ones(row.size, dtype=bool)
    while undecided.any():
        last_found = np.maximum.accumulate(np.where(found, place, -spacing))
        found_before = np.concatenate([[-spacing], last_found[:-1]])
        passed_over = undecided & (place - found_before < gaps)
        open_places = np.where(undecided, place, -spacing)
        undecided_before = np.concatenate([[-spacing], np.maximum.accumulate(open_places)[:-1]])
        newly_found = undecided & ~passed_over & (place - undecided_before >= gaps)
        found |= newly_found
        undecided &= ~(passed_over | newly_found)
    return matches.filter(pl.Series(found))


def focus_phrases(
    candidates: Sequence[TermScore],
    evidence_texts: Sequence[str],
    texts: pl.Series,
    person_ids: pl.Series,
    excluded_words: set[str] = frozenset(),
    previous_focus: Sequence[str] = (),
    statistics: Mapping[str, PhraseStatistics] | None = None,
) -> list[str]:
    """Up to ``FOCUS_SIZE`` maximal distinctive phrases, alphabetical, that speak for many members.

    ``candidates``: the persona's c-TF-IDF terms; ``texts``/``person_ids``: the member memories the
    label is written from. A phrase must be distinctive (``distinctive_phrases``),
    occur in ``MIN_SUPPORT`` evidence texts (grounded), add a word beyond ``excluded_words`` (the
    domain), not be a measure (right after a number in ``MEASURE_SHARE`` of its occurrences: "inch"
    of "65 inch", "qt" of "6 qt"), and occur in the memories of at least ``FOCUS_MIN_COVERAGE`` of
    the people. A phrase
    inside a longer candidate that keeps 80% of its coverage is a fragment of that one ("duty" of
    "call duty") and is dropped; a phrase beside the same word in more than ``SINGLE_ITEM_CONTEXT`` of
    its occurrences is part of a longer name, an item's title ("car seat" of "infant car seat"), kept
    only when it speaks for ``DOMINANT_COVERAGE`` of the people. Among the rest the two sharing no word that
    are broad and owned at once: highest coverage x exclusivity. Yesterday's focus (``previous_focus``)
    stays as it is while all its phrases still qualify, and its phrases that do come first otherwise,
    so near ties neither swap nor add wording from day to day.

    ``statistics``: the persona's ``phrase_statistics`` when they were measured for many personas at
    once; measured here from ``evidence_texts``, ``texts`` and ``person_ids`` otherwise.
    """
    def bar(term: str) -> float:
        return _bar(term, previous_focus)

    distinctive = distinctive_phrases(candidates, previous_focus)
    if statistics is None:
        statistics = phrase_statistics(
            pl.DataFrame({"term": [candidate.term for candidate in distinctive]}, schema={"term": pl.String})
            .with_columns(persona_id=pl.lit(0)),
            pl.DataFrame({"text": list(evidence_texts)}, schema={"text": pl.String}).with_columns(persona_id=pl.lit(0)),
            pl.DataFrame({"person_id": person_ids, "text": texts}).with_columns(persona_id=pl.lit(0)),
        ).get(0, {})
    measured = {term: statistics[term] for term in (candidate.term for candidate in distinctive) if term in statistics}
    grounded = {candidate.term: candidate.exclusivity for candidate in distinctive
                if candidate.term in measured and measured[candidate.term].support >= MIN_SUPPORT
                and set(candidate.term.split()) - excluded_words}
    if not grounded or texts.is_empty():
        return []
    coverage = {term: measured[term].coverage for term in grounded}
    maximal = [
        term for term in grounded
        if not any(f" {term} " in f" {longer} " and longer != term and coverage[longer] >= 0.8 * coverage[term]
                   for longer in grounded)
    ]
    kept = [
        term for term in maximal
        if coverage[term] >= FOCUS_MIN_COVERAGE * bar(term)
        and measured[term].after_number_share < MEASURE_SHARE
        and (coverage[term] >= DOMINANT_COVERAGE * bar(term)
             or measured[term].fixed_neighbour_share <= SINGLE_ITEM_CONTEXT / bar(term))
    ]
    if previous_focus and set(previous_focus) <= set(kept):
        return sorted(previous_focus)  # yesterday's focus holds whole: no phrase added or swapped
    ranked = sorted(kept, key=lambda term: (term not in previous_focus, -round(coverage[term] * grounded[term], 2),
                                            term))
    return sorted(_distinct_words(ranked, FOCUS_SIZE))


def _bar(term: str, previous_focus: Sequence[str]) -> float:
    """The share of a focus bar a phrase must clear: ``HOLD`` for yesterday's phrases, all of it otherwise."""
    return HOLD if term in previous_focus else 1.0


def label_persona(
    candidates: Sequence[TermScore],
    writing: pl.DataFrame,
    evidence: pl.DataFrame,
    shares: pl.DataFrame,
    population: pl.DataFrame,
    qualifier: str | None = None,
    n_held_out: int = 0,
    previous: PersonaLabel | None = None,
    focus_statistics: Mapping[str, PhraseStatistics] | None = None,
    domains: Sequence[tuple[str, list[str]]] | None = None,
    domain_shares: Mapping[str, float] | None = None,
    facts: PersonaFacts | None = None,
) -> PersonaLabel:
    """Role + domain + focus label and a description of claims, e.g. "Tennis spectator focused on
    court and racket"; "89% of its memories involve tennis apparel, tennis rackets or tennis
    tickets; 67% include an add to cart; 100% are on web."

    ``writing``: the member memories the label is written from (person_id, text, categories, actions,
    sources), the evidence among them; ``evidence``: text, categories; ``shares``/``population``:
    ``fact_shares`` of ``writing`` and of all memories; ``n_held_out``: how many memories will check
    the claims (``describe``); ``previous``: yesterday's label of the persona, whose domain, role and
    focus stay while they still hold (``persona_role``, ``focus_phrases``). The domain is the first
    candidate domain that ``MIN_SUPPORT`` evidence memories show (the storefront's only when no other
    is); every number of the description is a claim (``PersonaLabel.claims``). Without domain and focus
    the persona is "unlabelled".
    ``focus_statistics``/``domains``/``domain_shares``/``facts``: the persona's ``phrase_statistics``,
    ``persona_domains``, the ``statistic_share`` in ``writing`` of each of its domains' claim statistics
    (``domain_statistic``) and its ``persona_facts``, when measured for all personas at once.
    """
    evidence_texts = evidence["text"].fill_null("").to_list()
    evidence_categories = evidence["categories"].to_list()
    domain, domain_categories = None, []
    grounded_domains = [
        (candidate, categories)
        for candidate, categories in (persona_domain(shares, population) if domains is None else domains)
        if sum(bool(set(shown or ()) & set(categories)) for shown in evidence_categories) >= MIN_SUPPORT
    ]
    # The storefront is a domain of last resort: any other grounded domain names the persona first.
    grounded_domains = [pair for pair in grounded_domains if pair[0] != STOREFRONT_DOMAIN] or grounded_domains
    if grounded_domains:
        domain, domain_categories = next(
            (pair for pair in grounded_domains if previous is not None and pair[0] == previous.domain),
            grounded_domains[0],
        )
    domain_words = set(domain.lower().split()) if domain else set()
    focus = focus_phrases(candidates, evidence_texts, writing["text"], writing["person_id"], domain_words,
                          previous.focus if previous is not None else (), focus_statistics)
    if domain is None and not focus:
        return PersonaLabel(UNLABELLED, "People with no recurring theme.", [])
    facts = facts if facts is not None else one_persona_facts(shares, population)
    role = role_of(facts, domain, domain_categories, previous.role if previous is not None else None)
    head = " ".join(part for part in (qualifier, domain, role) if part)
    label = head[:1].upper() + head[1:]
    if focus:
        label += FOCUS_JOINER + _enumerate(focus)
    claims = describe(writing, facts, domain_categories, role, n_held_out,
                      domain_shares.get(domain_statistic(domain_categories)) if domain_shares is not None else None)
    return PersonaLabel(
        label=label,
        description=claims_sentence(claims),
        label_terms=[*([domain] if domain else []), *focus],
        role=role,
        domain=domain,
        domain_categories=list(domain_categories),
        focus=focus,
        qualifier=qualifier,
        claims=claims,
    )


def describe(writing: pl.DataFrame, facts: PersonaFacts, domain_categories: Sequence[str], role: str,
             n_held_out: int, domain_share: float | None = None) -> list[dict]:
    """The description's claims, each a share of the persona's memories in whole percents: those
    with a category of its domain, those with the action of its role (else its commonest purchase
    action), those on its commonest source. A share is stated only when it is measured well enough
    to hold within ``CLAIM_TOLERANCE`` on the held-out half: one standard error of the difference
    between the two halves, sqrt(p(1-p)(1/n_writing + 1/n_held_out)), at most the tolerance.
    ``facts``: the ``PersonaFacts`` of ``writing``; ``domain_share``: the domain claim's ``statistic_share``
    in ``writing``, when measured already."""
    share = facts.share
    claims = []
    if domain_categories:
        statistic = domain_statistic(domain_categories)
        names = _enumerate([display_name(category) for category in domain_categories], "or")
        claims.append((f"of its memories involve {names}", statistic,
                       statistic_share(writing, statistic) if domain_share is None else domain_share))
    role_actions = next((sorted(group) for group, noun in ACTION_ROLES if noun == role), sorted(PURCHASE_ACTIONS))
    present = [action for action in role_actions if f"action:{action}" in share]
    if present:
        action = max(present, key=lambda a: (share[f"action:{a}"], a))
        claims.append((f"include {action_phrase(action)}", f"action:{action}", share[f"action:{action}"]))
    sources = facts.of_kind("source", share)
    if sources:
        source = min(sources, key=lambda value: (-sources[value], value))
        claims.append((f"are on {source}", f"source:{source}", sources[source]))
    stated = []
    for text, statistic, value in claims:
        error = np.sqrt(value * (1 - value) * (1 / max(writing.height, 1) + 1 / max(n_held_out, 1)))
        if error <= CLAIM_TOLERANCE:
            value = round(value, 2)
            stated.append({"text": f"{value:.0%} {text}", "statistic": statistic, "value": value})
    return stated


def domain_statistic(domain_categories: Sequence[str]) -> str:
    """The claim statistic of a domain: "category:" and its categories, sorted, joined by "|"."""
    return "category:" + "|".join(sorted(domain_categories))


def statistic_share(memories: pl.DataFrame, statistic: str) -> float:
    """Share of ``memories`` (categories, actions, sources) showing a claim's fact: "category:a|b"
    (any of the categories), "action:order", "source:web". 0 without memories."""
    shares = statistic_shares(memories.with_columns(persona_id=pl.lit(0)),
                              pl.DataFrame({"persona_id": [0], "statistic": [statistic]}))
    return float(shares["share"][0])


def statistic_shares(memories: pl.DataFrame, statistics: pl.DataFrame) -> pl.DataFrame:
    """``statistic_share`` of every row of ``statistics`` (persona_id, statistic, any other columns, kept)
    among its persona's ``memories`` (persona_id, and the fact columns the statistics name), row for row:
    one join per kind of fact, not one query per persona and claim. Column share, 0 without memories."""
    kind_values = pl.col("statistic").str.splitn(":", 2)
    statistics = statistics.with_row_index("_statistic").with_columns(
        _kind=kind_values.struct.field("field_0"), _values=kind_values.struct.field("field_1").str.split("|"),
    )
    shares = [
        statistics.filter(pl.col("_kind") == kind).select("_statistic", "persona_id", "_values")
        .join(memories.select("persona_id", _shown=pl.col(column).cast(pl.List(pl.String))), on="persona_id")
        .group_by("_statistic")
        .agg(share=(pl.col("_shown").list.set_intersection(pl.col("_values")).list.len() > 0).fill_null(False).mean())
        for kind, column in FACT_COLUMNS.items() if (statistics["_kind"] == kind).any()
    ]
    return (
        statistics.join(pl.concat([statistics.select("_statistic").clear().with_columns(share=pl.lit(0.0)), *shares]),
                        on="_statistic", how="left")
        .sort("_statistic")
        .with_columns(pl.col("share").fill_null(0.0))
        .drop("_statistic", "_kind", "_values")
    )


def claims_sentence(claims: Sequence[dict]) -> str:
    """'93% of its memories involve tennis apparel, tennis rackets or tennis tickets; 35% include an order.'

    A labelled persona too small for any share to hold within ``CLAIM_TOLERANCE`` says so: it has a theme,
    its label, only no number to state."""
    if not claims:
        return f"Too few memories to state a share of them within {CLAIM_TOLERANCE * 100:.0f} points."
    sentence = "; ".join(claim["text"] for claim in claims)
    return sentence[:1].upper() + sentence[1:] + "."


def frequency_qualifiers(
    memories: pl.DataFrame, previous: Mapping[int, str | None] | None = None
) -> dict[int, str]:
    """'frequent' or 'occasional' per persona whose memories per member lie clearly beyond the
    population's quartiles of memories per person and persona (the window is the same for all, so
    per member-week compares the same way): above ``QUALIFIER_MARGIN`` x the upper quartile, below
    the lower one / ``QUALIFIER_MARGIN``. Yesterday's qualifier (``previous``) stays while the persona
    is beyond ``HOLD`` of that bar. ``memories``: persona_id, person_id."""
    pairs = memories.group_by("persona_id", "person_id").agg(pl.len().alias("n"))
    low, high = pairs["n"].quantile(0.25, "linear"), pairs["n"].quantile(0.75, "linear")
    rates = pairs.group_by("persona_id").agg(pl.col("n").mean())
    previous = previous or {}
    qualifiers = {}
    for persona_id, rate in rates.iter_rows():
        held = HOLD if previous.get(persona_id) == "frequent" else 1.0
        if rate > high * QUALIFIER_MARGIN * held:
            qualifiers[persona_id] = "frequent"
            continue
        held = HOLD if previous.get(persona_id) == "occasional" else 1.0
        if rate * QUALIFIER_MARGIN * held < low:
            qualifiers[persona_id] = "occasional"
    return qualifiers


def person_personas(
    assignments: pl.DataFrame,
    personas: pl.DataFrame,
    max_personas: int = 5,
    min_share: float = 0.1,
    n_evidence: int = 3,
    n_terms: int = 5,
) -> pl.DataFrame:
    """Each person's personas with weights that sum to 1.

    ``assignments``: memory_id, person_id, persona_id, weight (recency weight),
    distance, text. ``personas``: persona_id, label, top_terms.

    A persona's weight is its recency-weighted share of the person's memories. The
    ``max_personas`` largest shares are kept, then shares below ``min_share`` are
    dropped (the largest always stays, so every weighted person keeps one persona) and
    the rest renormalised. A person's terms are the persona's top terms ranked by how
    many of the person's memories in that persona contain them; the person-specific
    label is the persona label's role and domain focused on the person's first term that
    shares no word with the persona label ("Tennis spectator focused on racket and
    wimbledon" -> "Tennis spectator focused on serve"), or the persona label when there
    is none. Evidence is the
    person's ``n_evidence`` memories in that persona closest to its centroid.

    Columns: person_id, persona_id, weight, label, top_terms, evidence_memory_ids.
    """
    weighted = assignments.filter(pl.col("weight") > 0)
    kept = (
        weighted.group_by("person_id", "persona_id")
        .agg(ordered_sum(pl.col("weight")).alias("share"))
        .with_columns(pl.col("share") / ordered_sum(pl.col("share")).over("person_id"))
        # Shares rounded to 12 places rank and meet the bar, so a share of exactly min_share, or two equal
        # shares, are decided the same way on every run.
        .with_columns(pl.col("share").round(12).alias("share_key"))
        .sort("person_id", "share_key", "persona_id", descending=[False, True, False])
        .with_columns(pl.int_range(pl.len()).over("person_id").alias("rank"))
        .filter(
            (pl.col("rank") < max_personas)
            & ((pl.col("share_key") >= min_share) | (pl.col("rank") == 0))
        )
        .with_columns((pl.col("share") / ordered_sum(pl.col("share")).over("person_id")).alias("weight"))
        .select("person_id", "persona_id", "weight")
    )
    memories = weighted.join(kept.select("person_id", "persona_id"), on=["person_id", "persona_id"])
    evidence = (
        memories.sort("distance", "memory_id")
        .group_by("person_id", "persona_id", maintain_order=True)
        .agg(pl.col("memory_id").head(n_evidence).alias("evidence_memory_ids"))
    )
    persona_terms = personas.select(
        "persona_id",
        pl.col("top_terms").alias("term"),
        pl.int_ranges(pl.col("top_terms").list.len()).alias("term_rank"),
    ).explode("term", "term_rank")
    label_words = personas.select("persona_id", pl.col("label").str.to_lowercase().str.split(" ").alias("label_words"))
    new_to_label = (
        pl.col("term").str.split(" ").list.set_intersection(pl.col("label_words")).list.len() == 0
    )
    # Every member memory beside each of its persona's terms, streamed in batches, the label's words joined only
    # to the counts: held whole, a 1M-event day's 113k memories x 15 terms were the persona step's memory peak.
    person_terms = (
        memories.lazy().select(
            "person_id", "persona_id", normalised(pl.col("text").fill_null("")).alias("text")
        )
        .join(persona_terms.lazy(), on="persona_id")
        .filter(pl.col("text").str.contains(normalised(pl.col("term")), literal=True))
        .group_by("person_id", "persona_id", "term")
        .agg(pl.len().alias("n_memories"), pl.col("term_rank").first())
        .join(label_words.lazy(), on="persona_id")
        .sort("n_memories", "term_rank", descending=[True, False])
        .group_by("person_id", "persona_id", maintain_order=True)
        .agg(
            pl.col("term").head(n_terms).alias("top_terms"),
            pl.col("term").filter(new_to_label).first().alias("narrowing_term"),
        )
        .collect(engine="streaming")
    )
    persona_label = pl.col("persona_label")
    return (
        kept.join(
            personas.select("persona_id", pl.col("label").alias("persona_label")),
            on="persona_id",
            how="left",
        )
        .join(person_terms, on=["person_id", "persona_id"], how="left")
        .join(evidence, on=["person_id", "persona_id"], how="left")
        .with_columns(
            pl.col("top_terms").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.when(pl.col("narrowing_term").is_not_null() & (persona_label != UNLABELLED))
            .then(persona_label.str.split(FOCUS_JOINER).list.first() + FOCUS_JOINER + pl.col("narrowing_term"))
            .otherwise(persona_label)
            .alias("label"),
        )
        .sort("person_id", "weight", "persona_id", descending=[False, True, False])
        .select("person_id", "persona_id", "weight", "label", "top_terms", "evidence_memory_ids")
    )


def _distinct_words(terms: Sequence[str], limit: int) -> list[str]:
    """Up to ``limit`` terms, skipping any that shares a word with one already taken."""
    taken, used_words = [], set()
    for term in terms:
        words = set(term.split())
        if words & used_words:
            continue
        taken.append(term)
        used_words |= words
        if len(taken) == limit:
            break
    return taken


def _enumerate(items: Sequence[str], conjunction: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def explanation_text(explanation: Mapping | None, n_terms: int = 5) -> str:
    """One line for a report: 'terms tennis 0.041, racket 0.030; sources iot 62% (all 18%), web 80% (all 70%)'.

    Sources are listed by how far the persona's share exceeds the window's, most distinctive first.
    """
    if not explanation:
        return "no explanation"
    terms = ", ".join(f"{term['term']} {term['weight']:.3f}" for term in (explanation["terms"] or [])[:n_terms])
    sources = sorted(explanation["sources"] or [], key=lambda s: (s["population_share"] - s["persona_share"], s["source"]))
    mix = ", ".join(f"{s['source']} {s['persona_share']:.0%} (all {s['population_share']:.0%})" for s in sources)
    return f"terms {terms or 'none'}; sources {mix or 'none'}"
