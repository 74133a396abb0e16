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
# A shorter term gives way to a phrase that holds it in at least this share of its texts.
PHRASE_SHARE = 0.8
LABEL_SIZE = 3
# How much a term's own share damps its coverage when the label is chosen: 0 lets words
# every persona uses ("set", "tv") win on frequency, 1 trades too much coverage away (on
# two realistic worlds 0.25 raised alignment, coverage and label precision together).
OWN_SHARE_POWER = 0.25
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
    return term_presence(terms, texts).sum(axis=0, dtype=np.int64)


def term_presence(terms: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """Boolean matrix, one row per text and one column per term: does the term occur there."""
    haystack = normalised(pl.Series(list(texts), dtype=pl.String).fill_null(""))
    needles = normalised(pl.Series(list(terms), dtype=pl.String)).to_list()
    columns = [haystack.str.contains(needle, literal=True).to_numpy() for needle in needles]
    return np.column_stack(columns) if columns else np.zeros((len(haystack), 0), dtype=bool)


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
    label_size: int = LABEL_SIZE,
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


def term_shares(terms_by_cluster: Mapping[Hashable, Sequence[str]], texts: pl.Series, clusters: pl.Series
                ) -> dict[Hashable, dict[str, float]]:
    """Per cluster, each of its terms' share of all ``texts`` holding the term that are the
    cluster's: 1 for a word only the cluster uses, low for one every cluster uses ("gift").

    ``texts`` and ``clusters``: one row per document. One pass over the texts for all terms.
    """
    terms = sorted({term for cluster_terms in terms_by_cluster.values() for term in cluster_terms})
    frame = pl.DataFrame({"cluster": clusters, "text": normalised(texts.fill_null(""))})
    needles = normalised(pl.Series(terms, dtype=pl.String)).to_list()
    hits = frame.group_by("cluster").agg(
        pl.col("text").str.contains(needle, literal=True).sum().alias(term) for term, needle in zip(terms, needles)
    )
    own = {row.pop("cluster"): row for row in hits.iter_rows(named=True)}
    totals = hits.drop("cluster").sum().row(0, named=True) if terms else {}
    return {
        cluster: {term: own.get(cluster, {}).get(term, 0) / max(totals[term], 1) for term in cluster_terms}
        for cluster, cluster_terms in terms_by_cluster.items()
    }


def coverage_ranked_terms(
    terms: Sequence[str],
    member_texts: Sequence[str],
    evidence_texts: Sequence[str],
    own_shares: Mapping[str, float] | None = None,
    label_size: int = LABEL_SIZE,
    phrase_share: float = PHRASE_SHARE,
) -> list[str]:
    """Distinctive terms reordered so the first ``label_size`` cover as many members as they can.

    c-TF-IDF ranks a word of one bestselling title ("steel" of "stainless steel stock pot")
    as high as a word of the persona's theme; a label of such words misses most members.
    Among the ``terms`` the evidence supports (``MIN_SUPPORT``), each of the first
    ``label_size`` is the term in most ``member_texts`` the ones before it miss, damped by
    its share of the window's texts that hold it (``own_shares``, see ``term_shares``;
    1 when missing) to the power ``OWN_SHARE_POWER``; ties keep the c-TF-IDF order, and a term sharing a
    word with one taken waits, as in the label. The rest keep the c-TF-IDF order (the
    description's further terms). Phrases stay whole: a term found with a longer term
    holding it ("steel" with "stainless steel") or with an overlapping one ("duty modern"
    with "modern warfare") in at least ``phrase_share`` of its texts is never chosen
    first; it only follows. Unsupported terms come last, so ``label_persona`` over the
    result takes the chosen ones. ``member_texts``: members the label is not scored on.
    """
    terms = list(dict.fromkeys(terms))
    supported = term_support(terms, evidence_texts) >= MIN_SUPPORT
    candidates = [term for term, ok in zip(terms, supported, strict=True) if ok]
    unsupported = [term for term, ok in zip(terms, supported, strict=True) if not ok]
    if not candidates or not len(member_texts):
        return candidates + unsupported
    presence = term_presence(candidates, member_texts)
    counts = presence.sum(axis=0)
    own_share = np.array([(own_shares or {}).get(term, 1.0) for term in candidates])
    together = presence.T.astype(np.int64) @ presence.astype(np.int64)
    padded = [f" {term} " for term in candidates]
    words = [set(term.split()) for term in candidates]

    def part_of_phrase(i: int, j: int) -> bool:
        holds = padded[i] in padded[j]
        overlaps = len(words[i]) > 1 and bool(words[i] & words[j]) and padded[j] not in padded[i]
        return i != j and (holds or overlaps) and together[i, j] >= phrase_share * counts[i]

    n = len(candidates)
    remaining = [i for i in range(n) if not any(part_of_phrase(i, j) for j in range(n))]
    covered = np.zeros(presence.shape[0], dtype=bool)
    ranked, used_words = [], set()
    while len(ranked) < label_size and (eligible := [i for i in remaining if not words[i] & used_words]):
        gains = [(presence[:, i] & ~covered).sum() * own_share[i] ** OWN_SHARE_POWER for i in eligible]
        best = eligible[int(np.argmax(gains))]
        ranked.append(best)
        remaining.remove(best)
        covered |= presence[:, best]
        used_words |= words[best]
    left_over = [i for i in range(n) if i not in ranked]
    return [candidates[i] for i in ranked + left_over] + unsupported


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
