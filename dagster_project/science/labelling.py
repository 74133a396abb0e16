"""Persona labels grounded in evidence.

* ``ctfidf_terms``: BERTopic-style class-based TF-IDF -- the terms that set a cluster's
  memories apart from the other clusters' (``ctfidf_term_weights`` with their scores).
* ``persona_explanations``: why a persona is itself -- its c-TF-IDF terms with weights and
  its mix of sources against the whole window's.
* ``select_evidence``: a persona's evidence is its memories closest to the centroid.
* ``label_persona``: a short label and a one-sentence description that use only terms
  occurring in at least ``MIN_SUPPORT`` evidence memories.
* ``check_label_grounded``: the construction rule as an invariant (raises when broken).
* ``held_out_memories``: the seeded sample of other members a label is scored on.
* ``person_personas``: each person's personas, weighted, with a person-specific label.

A term "occurs" in a text when its words appear there in order as whole words, after
lower-casing and treating every run of non-alphanumeric characters as a space.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from dagster_project.science.tokens import ngram_counts

MIN_SUPPORT = 2
LABEL_SEPARATOR = " · "
UNLABELLED = "unlabelled"
SOURCES = ("web", "social", "crm", "iot")
# Words the description template and the fallback add; they come from the template
# or the evidence's metadata (sources), not from the memories' text, so truthfulness
# does not count them.
TEMPLATE_WORDS = frozenset(
    {"people", "interested", "seen", "recurring", "theme", UNLABELLED, *SOURCES}
)
# Words: a letter, then letters or digits ("ps5" yes, "97" no).
_TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W_]+\b"


def normalised(texts: pl.Expr | pl.Series) -> pl.Expr | pl.Series:
    """Lower-case text with single spaces between words and a space at both ends."""
    words = texts.str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", " ").str.strip_chars()
    return " " + words + " "


def term_support(terms: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """Number of ``texts`` in which each term occurs."""
    haystack = normalised(pl.Series(texts, dtype=pl.String).fill_null(""))
    needles = normalised(pl.Series(terms, dtype=pl.String)).to_list()
    return np.array(
        [haystack.str.contains(needle, literal=True).sum() for needle in needles], dtype=np.int64
    )


def ctfidf_terms(
    docs_per_cluster: Mapping[Hashable, Sequence[str]],
    top_n: int = 10,
    min_docs: int = MIN_SUPPORT,
    ngram_range: tuple[int, int] = (1, 2),
) -> dict[Hashable, list[str]]:
    """Top ``top_n`` c-TF-IDF terms per cluster, best first (see ``ctfidf_term_weights``)."""
    weights = ctfidf_term_weights(docs_per_cluster, top_n, min_docs, ngram_range)
    return {cluster: [term for term, _ in terms] for cluster, terms in weights.items()}


def ctfidf_term_weights(
    docs_per_cluster: Mapping[Hashable, Sequence[str]],
    top_n: int = 10,
    min_docs: int = MIN_SUPPORT,
    ngram_range: tuple[int, int] = (1, 2),
) -> dict[Hashable, list[tuple[str, float]]]:
    """Top ``top_n`` c-TF-IDF terms per cluster with their scores, best first.

    A term counts once per document (a memory that repeats a title ten times is one
    vote), tf is the term's share of the cluster's counts and idf = log(1 + A / f),
    with A the mean count per cluster and f the term's count over all clusters.
    Terms found in fewer than ``min_docs`` of the cluster's documents are left out.
    """
    clusters = list(docs_per_cluster)
    # One column of every cluster's documents: a Python list of 100k+ strings costs more than the counting.
    docs = pl.concat([pl.Series([], dtype=pl.String), *(pl.Series(docs_per_cluster[c], dtype=pl.String) for c in clusters)])
    owners = np.repeat(np.arange(len(clusters)), [len(docs_per_cluster[c]) for c in clusters])
    presence, vocabulary = ngram_counts(docs, ngram_range, _TOKEN_PATTERN, binary=True)
    if vocabulary.size == 0:  # no document has a single word
        return {cluster: [] for cluster in clusters}
    membership = sp.csr_matrix(
        (np.ones(len(docs)), (owners, np.arange(len(docs)))), shape=(len(clusters), len(docs))
    )
    counts = np.asarray((membership @ presence).todense())
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + counts.sum() / len(clusters) / np.maximum(counts.sum(axis=0), 1))
    scores = np.where(counts >= min_docs, tf * idf, 0.0)
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :top_n]
    return {
        cluster: [(str(vocabulary[j]), float(scores[row, j])) for j in ranked[row] if scores[row, j] > 0]
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
    population = by_source.group_by("source").agg(pl.col("weight").sum() / memories["weight"].sum())
    persona_totals = memories.group_by("persona_id").agg(pl.col("weight").sum().alias("total"))
    sources = (
        by_source.group_by("persona_id", "source").agg(pl.col("weight").sum())
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
    assignments: pl.DataFrame, evidence: pl.DataFrame, n: int = 50, seed: int = 0
) -> pl.DataFrame:
    """A seeded random sample of each persona's members that are not its evidence.

    The label is written from the evidence, so scoring it there proves nothing; these
    memories score it honestly. ``assignments``: memory_id, persona_id (plus any
    columns to keep); ``evidence``: persona_id, evidence_memory_ids. Keeps ``n`` per
    persona, or all its other members when it has fewer.
    """
    used = evidence.explode("evidence_memory_ids").select("persona_id", memory_id="evidence_memory_ids")
    draw = np.random.default_rng(seed).random(assignments.height)
    return (
        assignments.with_columns(_draw=pl.Series(draw))
        .join(used, on=["persona_id", "memory_id"], how="anti")
        .sort("persona_id", "_draw")
        .group_by("persona_id", maintain_order=True)
        .head(n)
        .drop("_draw")
    )


def check_label_grounded(label: PersonaLabel, evidence_texts: Sequence[str]) -> None:
    """The construction rule as an invariant: every label and description term occurs in
    at least ``MIN_SUPPORT`` evidence texts. Raises ``ValueError`` naming the terms that do not."""
    terms = list(dict.fromkeys([*label.label_terms, *label.description_terms]))
    if not terms:
        return
    unsupported = [term for term, count in zip(terms, term_support(terms, evidence_texts), strict=True)
                   if count < MIN_SUPPORT]
    if unsupported:
        raise ValueError(f"label {label.label!r} uses terms its evidence does not support: {unsupported}")


@dataclass(frozen=True)
class PersonaLabel:
    label: str
    description: str
    label_terms: list[str]
    description_terms: list[str]


def label_persona(
    terms: Sequence[str],
    evidence_texts: Sequence[str],
    evidence_sources: Sequence[Sequence[str]] = (),
    label_size: int = 3,
    description_size: int = 5,
) -> PersonaLabel:
    """Label and one-sentence description from the terms the evidence supports.

    A term is supported when it occurs in at least ``MIN_SUPPORT`` evidence texts. The
    label joins up to ``label_size`` supported terms, skipping any that shares a word
    with one already taken ("pro staff" after "staff"); the description names up to
    ``description_size`` and the sources seen in at least ``MIN_SUPPORT`` evidence
    memories, e.g. "People interested in tennis, racket and wimbledon; seen on web and
    social." With no supported term the persona is "unlabelled".
    """
    support = term_support(terms, evidence_texts)
    supported = [term for term, count in zip(terms, support, strict=True) if count >= MIN_SUPPORT]
    label_terms = _distinct_words(supported, label_size)
    if not label_terms:
        return PersonaLabel(UNLABELLED, "People with no recurring theme.", [], [])
    description_terms = _distinct_words(supported, description_size)
    sentence = f"People interested in {_enumerate(description_terms)}"
    source_counts = Counter(source for sources in evidence_sources for source in set(sources))
    seen_on = sorted(
        (source for source, count in source_counts.items() if count >= MIN_SUPPORT),
        key=lambda source: (-source_counts[source], source),
    )
    if seen_on:
        sentence += f"; seen on {_enumerate(seen_on)}"
    return PersonaLabel(
        LABEL_SEPARATOR.join(label_terms), sentence + ".", label_terms, description_terms
    )


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
    label is the persona label's first term narrowed by the person's first term that
    shares no word with the persona label ("tennis · racket" -> "tennis · wimbledon"),
    or the persona label when there is none. Evidence is the
    person's ``n_evidence`` memories in that persona closest to its centroid.

    Columns: person_id, persona_id, weight, label, top_terms, evidence_memory_ids.
    """
    weighted = assignments.filter(pl.col("weight") > 0)
    kept = (
        weighted.group_by("person_id", "persona_id")
        .agg(pl.col("weight").sum().alias("share"))
        .with_columns(pl.col("share") / pl.col("share").sum().over("person_id"))
        .sort("person_id", "share", "persona_id", descending=[False, True, False])
        .with_columns(pl.int_range(pl.len()).over("person_id").alias("rank"))
        .filter(
            (pl.col("rank") < max_personas)
            & ((pl.col("share") >= min_share) | (pl.col("rank") == 0))
        )
        .with_columns((pl.col("share") / pl.col("share").sum().over("person_id")).alias("weight"))
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
        pl.col("label")
        .str.replace_all(LABEL_SEPARATOR, " ", literal=True)
        .str.split(" ")
        .alias("label_words"),
        pl.col("top_terms").alias("term"),
        pl.int_ranges(pl.col("top_terms").list.len()).alias("term_rank"),
    ).explode("term", "term_rank")
    new_to_label = (
        pl.col("term").str.split(" ").list.set_intersection(pl.col("label_words")).list.len() == 0
    )
    person_terms = (
        memories.select(
            "person_id", "persona_id", normalised(pl.col("text").fill_null("")).alias("text")
        )
        .join(persona_terms, on="persona_id")
        .filter(pl.col("text").str.contains(normalised(pl.col("term")), literal=True))
        .group_by("person_id", "persona_id", "term")
        .agg(pl.len().alias("n_memories"), pl.col("term_rank", "label_words").first())
        .sort("n_memories", "term_rank", descending=[True, False])
        .group_by("person_id", "persona_id", maintain_order=True)
        .agg(
            pl.col("term").head(n_terms).alias("top_terms"),
            pl.col("term").filter(new_to_label).first().alias("narrowing_term"),
        )
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
            .then(
                persona_label.str.split(LABEL_SEPARATOR).list.first()
                + LABEL_SEPARATOR
                + pl.col("narrowing_term")
            )
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


def _enumerate(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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
