"""Memory embedding: a replaceable, picklable sparse vectoriser.

A memory's vector joins three blocks, each L2-normalised before weighting so the
weights alone set their influence, and the whole row is L2-normalised again (cosine
similarity is then a dot product):

* words: TF-IDF over word uni/bigrams of the memory text (sublinear tf, English stop
  words removed) -- what the person looked at, searched or wrote;
* intent: a one-hot token of the memory's intent (the category it was segmented on);
* sources: the memory's sources as tokens (web, social, crm, iot).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from dagster_project.science.tokens import ngram_counts


class MemoryVectorizer:
    """fit/transform on an ``intent_memories`` frame (columns text, intent, sources)."""

    def __init__(
        self,
        intent_weight: float = 0.25,
        source_weight: float = 0.2,
        min_df: int | float = 2,
        max_features: int | None = 50_000,
    ) -> None:
        self.intent_weight = intent_weight
        self.source_weight = source_weight
        self.min_df = min_df
        self.max_features = max_features
        self.words: TfidfVectorizer | None = None
        self.intents: list[str] = []
        self.sources: list[str] = []

    def fit(self, memories: pl.DataFrame) -> MemoryVectorizer:
        self._fit_blocks(memories)
        return self

    def _fit_blocks(self, memories: pl.DataFrame) -> sp.csr_matrix:
        """Fit every block; returns the word TF-IDF of `memories`, so fit_transform tokenises once.

        The fit counts n-grams in Polars (`tokens.ngram_counts`) and keeps what
        ``TfidfVectorizer(min_df, max_features)`` would keep; ``self.words`` is then a
        TfidfVectorizer with that vocabulary and idf, so transforming new memories (and
        the MLflow model) works as before.
        """
        counts, terms = ngram_counts(memories["text"], (1, 2))
        document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
        min_documents = self.min_df if isinstance(self.min_df, int) else self.min_df * counts.shape[0]
        kept = np.flatnonzero(document_frequency >= min_documents)
        if self.max_features is not None and kept.size > self.max_features:
            totals = np.asarray(counts[:, kept].sum(axis=0)).ravel()
            kept = np.sort(kept[np.argsort(-totals, kind="stable")[: self.max_features]])
        if kept.size == 0:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        counts = counts[:, kept]
        idf = np.log((1 + counts.shape[0]) / (1 + document_frequency[kept])) + 1
        self.words = TfidfVectorizer(
            ngram_range=(1, 2),
            sublinear_tf=True,
            stop_words="english",
            dtype=np.float32,
            vocabulary={term: column for column, term in enumerate(terms[kept])},
        )
        self.words.idf_ = idf
        counts.data = 1 + np.log(counts.data)
        words = normalize(counts @ sp.diags(idf)).astype(np.float32)
        self.intents = memories["intent"].drop_nulls().unique().sort().to_list()
        self.sources = memories["sources"].explode().drop_nulls().unique().sort().to_list()
        return words

    def transform(self, memories: pl.DataFrame) -> sp.csr_matrix:
        """L2-normalised rows, one per memory; unseen intents and sources add nothing."""
        if self.words is None:
            raise RuntimeError("MemoryVectorizer.transform called before fit")
        return self._stack(memories, self.words.transform(_texts(memories)))

    def fit_transform(self, memories: pl.DataFrame) -> sp.csr_matrix:
        return self._stack(memories, self._fit_blocks(memories))

    def _stack(self, memories: pl.DataFrame, word_tfidf: sp.csr_matrix) -> sp.csr_matrix:
        words = normalize(word_tfidf)
        intents = _one_hot(memories, "intent", self.intents)
        sources = _one_hot(memories, "sources", self.sources)
        stacked = sp.hstack(
            [words, self.intent_weight * intents, self.source_weight * normalize(sources)],
            format="csr",
            dtype=np.float32,
        )
        return normalize(stacked)

    @property
    def feature_names(self) -> list[str]:
        """Column names: words, then ``intent=<intent>``, then ``source=<source>``."""
        if self.words is None:
            raise RuntimeError("MemoryVectorizer is not fitted")
        return (
            list(self.words.get_feature_names_out())
            + [f"intent={name}" for name in self.intents]
            + [f"source={name}" for name in self.sources]
        )


def _texts(memories: pl.DataFrame) -> list[str]:
    return memories["text"].fill_null("").to_list()


def _one_hot(memories: pl.DataFrame, column: str, vocabulary: list[str]) -> sp.csr_matrix:
    """Indicator matrix (memory x vocabulary) of a string or list-of-string column."""
    index = {name: position for position, name in enumerate(vocabulary)}
    pairs = memories.select(pl.int_range(pl.len()).alias("row"), pl.col(column).alias("value"))
    if isinstance(pairs.schema["value"], pl.List):
        pairs = pairs.explode("value")
    pairs = pairs.with_columns(
        pl.col("value").replace_strict(index, default=None, return_dtype=pl.Int64)
    ).drop_nulls()
    return sp.csr_matrix(
        (
            np.ones(pairs.height, dtype=np.float32),
            (pairs["row"].to_numpy(), pairs["value"].to_numpy()),
        ),
        shape=(memories.height, len(vocabulary)),
    )
