"""The persona catalogue of one model date: labels, descriptions, evidence and quality per persona."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import scipy.sparse as sp

from dagster_project.science.labelling import (
    CLAIM_DTYPE,
    PersonaFacts,
    PersonaLabel,
    check_labels_grounded,
    ctfidf_from_presence,
    distinctive_phrases,
    domain_statistic,
    fact_shares,
    frequency_qualifiers,
    held_out_memories,
    label_persona,
    persona_domains,
    persona_explanations,
    persona_facts,
    phrase_statistics,
    select_evidence,
    statistic_shares,
    term_presence,
)
from dagster_project.science.metrics import cohesion, coverages, evidence_alignments, quality, truthfulnesses
from dagster_project.science.ordered import ordered_sum

if TYPE_CHECKING:  # daily.py imports this module
    from dagster_project.science.daily import PersonaSettings


# Candidate focus phrases per persona: the c-TF-IDF terms beyond the top ones it stores.
FOCUS_CANDIDATES = 60
# Half of a persona's other members are held out: its description's shares are checked there
# within 5 points, which 50 memories could not tell from sampling noise.
HELD_OUT_SHARE = 0.5
FACT_LIST_COLUMNS = ("categories", "actions")


def label_personas(
    assignments: pl.DataFrame,
    X: sp.csr_matrix,
    labels: np.ndarray,
    centroids: np.ndarray,
    persona_ids: np.ndarray,
    weights: np.ndarray,
    settings: PersonaSettings,
    previous_labels: pl.DataFrame | None = None,
    presence: tuple[sp.csr_matrix, np.ndarray] | None = None,
) -> pl.DataFrame:
    """c-TF-IDF terms, evidence, label, description and quality per persona (a loop per persona writes the
    labels; the phrase counts, grounding checks and scores are whole-frame operations over all personas).

    ``assignments``: memory_id, person_id, persona_id, distance, weight, text, sources, and the
    memories' categories and actions (empty when absent). Each persona's other members are split
    (seeded) into the memories its label and claims are written from, evidence included, and a
    held-out set (``n_held_out`` or half of them, whichever is more) that scores alignment and
    truthfulness; coverage counts all its people. ``previous_labels`` (yesterday's rows of this frame:
    persona_id, role, domain, focus, qualifier) keep a persona's wording while it still holds, so labels do not
    churn from day to day (``labelling.label_persona``). ``presence``: the ``labelling.term_presence`` of the
    assignments' texts, row for row, when the caller counted it already (the parents reuse the personas').
    """
    is_weighted = (assignments["weight"] > 0).to_numpy()
    weighted = assignments.filter(pl.Series(is_weighted)).with_columns(
        pl.lit([], dtype=pl.List(pl.String)).alias(column) for column in FACT_LIST_COLUMNS
        if column not in assignments.columns
    )
    terms_of_rows, vocabulary = presence if presence is not None else term_presence(assignments["text"])
    clusters = weighted["persona_id"].unique().sort()
    candidates = ctfidf_from_presence(
        terms_of_rows[np.flatnonzero(is_weighted)], vocabulary,
        weighted["persona_id"].rank("dense").cast(pl.Int64).to_numpy() - 1, clusters.to_list(),
        top_n=max(FOCUS_CANDIDATES, settings.n_terms),
    )
    term_weights = {persona_id: [(term.term, term.weight) for term in terms[:settings.n_terms]]
                    for persona_id, terms in candidates.items()}
    evidence = select_evidence(weighted.select("memory_id", "persona_id", "distance"), n=settings.n_evidence)
    memory_columns = ["memory_id", "persona_id", "person_id", "text", "sources", *FACT_LIST_COLUMNS]
    held_out = held_out_memories(weighted.select(memory_columns), evidence, settings.n_held_out, settings.seed,
                                 share=HELD_OUT_SHARE)
    writing = weighted.select(memory_columns).join(held_out.select("memory_id"), on="memory_id", how="anti")
    shares = fact_shares(writing)
    population = fact_shares(weighted.with_columns(_all=pl.lit(0)), by="_all")
    domains = persona_domains(shares, population)
    facts = persona_facts(shares, population)
    shares = shares.partition_by("persona_id", as_dict=True)
    yesterday = {
        row["persona_id"]: PersonaLabel("", "", [], role=row["role"], domain=row["domain"], focus=row["focus"] or [],
                                        qualifier=row["qualifier"])
        for row in (previous_labels.select("persona_id", "role", "domain", "focus", "qualifier").iter_rows(named=True)
                    if previous_labels is not None and "qualifier" in previous_labels.columns else [])
    }
    qualifiers = frequency_qualifiers(weighted.select("persona_id", "person_id"),
                                      {persona_id: label.qualifier for persona_id, label in yesterday.items()})
    members = weighted.select(memory_columns)
    evidence_rows = members.join(
        evidence.explode("evidence_memory_ids").select("persona_id", memory_id="evidence_memory_ids"),
        on=["persona_id", "memory_id"], maintain_order="left",
    )
    # The focus phrases' counts over the evidence and the writing memories, every persona in one pass.
    phrases = pl.DataFrame(
        [(persona_id, candidate.term) for persona_id, terms in candidates.items()
         for candidate in distinctive_phrases(terms, yesterday[persona_id].focus if persona_id in yesterday else ())],
        schema={"persona_id": weighted.schema["persona_id"], "term": pl.String}, orient="row",
    )
    focus_statistics = phrase_statistics(phrases, evidence_rows, writing)
    held_out_of = held_out.partition_by("persona_id", as_dict=True)
    writing_of = writing.partition_by("persona_id", as_dict=True)
    evidence_rows_of = evidence_rows.partition_by("persona_id", as_dict=True)
    sizes = weighted.group_by("persona_id").agg(
        pl.len().alias("n_memories"),
        pl.col("person_id").n_unique().alias("n_users"),
        ordered_sum(pl.col("weight")).alias("share"),
    )
    # Each candidate domain's claim (its categories' share of the writing memories), all personas in one pass.
    domain_shares = statistic_shares(writing, pl.DataFrame(
        [(persona_id, domain_statistic(categories)) for persona_id, candidates_of in domains.items()
         for _, categories in candidates_of],
        schema={"persona_id": weighted.schema["persona_id"], "statistic": pl.String}, orient="row",
    ))
    domain_shares_of = {}
    for persona_id, statistic, share in domain_shares.iter_rows():
        domain_shares_of.setdefault(persona_id, {})[statistic] = share
    no_rows = weighted.select(memory_columns).clear()
    evidence_ids_of = dict(evidence.select("persona_id", "evidence_memory_ids").iter_rows())
    persona_labels = [
        label_persona(
            candidates.get(persona_id, []),
            writing_of.get((persona_id,), no_rows),
            evidence_rows_of.get((persona_id,), no_rows),
            shares.get((persona_id,), population.clear()),
            population,
            qualifiers.get(persona_id),
            held_out_of.get((persona_id,), no_rows).height,
            yesterday.get(persona_id),
            focus_statistics.get(persona_id, {}),
            domains.get(persona_id, []),
            domain_shares_of.get(persona_id, {}),
            facts.get(persona_id, PersonaFacts(0, {}, {})),
        )
        for persona_id in persona_ids.tolist()
    ]
    catalogue = pl.DataFrame(
        [{
            "persona_id": persona_id,
            "label": persona_label.label,
            "description": persona_label.description,
            "role": persona_label.role,
            "domain": persona_label.domain,
            "domain_categories": persona_label.domain_categories,
            "qualifier": persona_label.qualifier,
            "focus": persona_label.focus,
            "claims": persona_label.claims,
            "top_terms": [term for term, _ in term_weights.get(persona_id, [])],
            "label_terms": persona_label.label_terms,
            "evidence_memory_ids": list(evidence_ids_of.get(persona_id, [])),
        } for persona_id, persona_label in zip(persona_ids.tolist(), persona_labels, strict=True)],
        schema={
            "persona_id": pl.Int64, "label": pl.String, "description": pl.String,
            "role": pl.String, "domain": pl.String, "domain_categories": pl.List(pl.String), "qualifier": pl.String,
            "focus": pl.List(pl.String), "claims": CLAIM_DTYPE,
            "top_terms": pl.List(pl.String), "label_terms": pl.List(pl.String),
            "evidence_memory_ids": pl.List(pl.String),
        },
    )
    # Every label checked against its evidence and scored at once: held out, and over all its people.
    check_labels_grounded(catalogue, evidence_rows)
    scores = [
        cohesion(X, labels, centroids, weights),
        evidence_alignments(held_out, catalogue)["evidence_alignment"].to_numpy(),
        truthfulnesses(held_out, catalogue)["truthfulness"].to_numpy(),
        coverages(members, catalogue)["coverage"].to_numpy(),
    ]
    catalogue = catalogue.with_columns(
        pl.Series(name, values, dtype=pl.Float64)
        for name, values in zip(("cohesion", "evidence_alignment", "truthfulness", "coverage", "quality"),
                                [*scores, quality(*scores)], strict=True)
    )
    return (
        catalogue.join(sizes, on="persona_id", how="left")
        .join(persona_explanations(weighted.select("memory_id", "persona_id", "sources", "weight"), term_weights),
              on="persona_id", how="left")
        .with_columns(pl.col("n_memories", "n_users").fill_null(0), pl.col("share").fill_null(0.0))
        .filter(pl.col("n_memories") > 0)
        .select(
            "persona_id", "label", "description", "role", "domain", "domain_categories", "qualifier", "focus", "claims",
            "top_terms", "label_terms",
            "n_memories", "n_users", "share", "cohesion", "evidence_alignment", "truthfulness", "coverage", "quality",
            "evidence_memory_ids", "explanation",
        )
        .sort("persona_id")
    )
