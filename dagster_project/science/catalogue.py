"""The persona catalogue of one model date: labels, descriptions, evidence and quality per persona."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import scipy.sparse as sp

from dagster_project.science.labelling import (
    MIN_SUPPORT,
    check_label_grounded,
    ctfidf_term_weights,
    held_out_memories,
    label_persona,
    persona_explanations,
    select_evidence,
)
from dagster_project.science.metrics import cohesion, coverage, evidence_alignment, quality, truthfulness

if TYPE_CHECKING:  # daily.py imports this module
    from dagster_project.science.daily import PersonaSettings


def label_personas(
    assignments: pl.DataFrame,
    X: sp.csr_matrix,
    labels: np.ndarray,
    centroids: np.ndarray,
    persona_ids: np.ndarray,
    weights: np.ndarray,
    settings: PersonaSettings,
) -> pl.DataFrame:
    """c-TF-IDF terms, evidence, label, description and quality per persona (a loop per persona).

    The label is written from the evidence (the memories closest to the centroid) and
    must be supported there; alignment and truthfulness are scored on a seeded sample of
    the other members, coverage on all of them.
    """
    weighted = assignments.filter(pl.col("weight") > 0)
    docs = weighted.group_by("persona_id").agg(pl.col("text").fill_null(""))
    term_weights = ctfidf_term_weights(dict(zip(docs["persona_id"], docs["text"], strict=True)), top_n=settings.n_terms)
    terms_by_persona = {persona_id: [term for term, _ in terms] for persona_id, terms in term_weights.items()}
    evidence = select_evidence(weighted.select("memory_id", "persona_id", "distance"), n=settings.n_evidence)
    held_out = held_out_memories(
        weighted.select("memory_id", "persona_id", "text"), evidence, settings.n_held_out, settings.seed
    ).partition_by("persona_id", as_dict=True)
    members = weighted.select("memory_id", "persona_id", "person_id", "text", "sources").partition_by(
        "persona_id", as_dict=True
    )
    sizes = weighted.group_by("persona_id").agg(
        pl.len().alias("n_memories"),
        pl.col("person_id").n_unique().alias("n_users"),
        pl.col("weight").sum().alias("share"),
    )
    cohesion_by_label = cohesion(X, labels, centroids, weights)
    no_rows = pl.DataFrame(schema={"memory_id": pl.String, "person_id": pl.String, "text": pl.String,
                                   "sources": pl.List(pl.String)})
    rows = []
    for label_index, persona_id in enumerate(persona_ids.tolist()):
        evidence_ids = evidence.filter(pl.col("persona_id") == persona_id)["evidence_memory_ids"]
        evidence_ids = evidence_ids.item() if evidence_ids.len() else []
        persona_members = members.get((persona_id,), no_rows)
        evidence_rows = persona_members.filter(pl.col("memory_id").is_in(evidence_ids))
        evidence_texts = evidence_rows["text"].fill_null("").to_list()
        terms = terms_by_persona.get(persona_id, [])
        persona_label = label_persona(terms, evidence_texts, evidence_rows["sources"].to_list())
        check_label_grounded(persona_label, evidence_texts)
        held_out_texts = held_out.get((persona_id,), no_rows)["text"].fill_null("").to_list()
        scores = (
            float(cohesion_by_label[label_index]),
            evidence_alignment(persona_label.label_terms, held_out_texts),
            truthfulness(persona_label.label, persona_label.description, held_out_texts,
                         min_share=MIN_SUPPORT / settings.n_evidence),
            coverage(persona_label.label_terms, persona_members["text"], persona_members["person_id"]),
        )
        rows.append({
            "persona_id": persona_id,
            "label": persona_label.label,
            "description": persona_label.description,
            "top_terms": terms,
            "label_terms": persona_label.label_terms,
            "cohesion": scores[0],
            "evidence_alignment": scores[1],
            "truthfulness": scores[2],
            "coverage": scores[3],
            "quality": quality(*scores),
            "evidence_memory_ids": list(evidence_ids),
        })
    catalogue = pl.DataFrame(
        rows,
        schema={
            "persona_id": pl.Int64, "label": pl.String, "description": pl.String,
            "top_terms": pl.List(pl.String), "label_terms": pl.List(pl.String),
            "cohesion": pl.Float64, "evidence_alignment": pl.Float64, "truthfulness": pl.Float64,
            "coverage": pl.Float64, "quality": pl.Float64, "evidence_memory_ids": pl.List(pl.String),
        },
    )
    return (
        catalogue.join(sizes, on="persona_id", how="left")
        .join(persona_explanations(weighted.select("memory_id", "persona_id", "sources", "weight"), term_weights),
              on="persona_id", how="left")
        .with_columns(pl.col("n_memories", "n_users").fill_null(0), pl.col("share").fill_null(0.0))
        .filter(pl.col("n_memories") > 0)
        .select(
            "persona_id", "label", "description", "top_terms", "label_terms", "n_memories", "n_users",
            "share", "cohesion", "evidence_alignment", "truthfulness", "coverage", "quality", "evidence_memory_ids",
            "explanation",
        )
        .sort("persona_id")
    )
