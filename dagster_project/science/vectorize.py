"""Memory embedding: a replaceable, picklable sparse vectoriser.

A memory's vector joins three blocks, each L2-normalised before weighting so the
weights alone set their influence, and the whole row is L2-normalised again (cosine
similarity is then a dot product):

* words: TF-IDF over word uni/bigrams of the memory text (sublinear tf, English stop
  words removed) -- what the person looked at, searched or wrote;
* intent: a one-hot token of the memory's intent (the category it was segmented on);
* sources: the memory's sources as tokens (web, social, crm, iot);
* context (optional, ``context_weight`` > 0): the memory's words and intent mapped to
  dense vectors learnt from which people use them together (``ppmi_embedding``: PPMI
  over person x feature counts, then truncated SVD; item2vec-like, no neural model).
  Titles and categories shared by several personas get the direction of the people who
  use them, so a memory inherits what its words mean to people, not only the words.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
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
        context_weight: float = 0.0,
        context_dimensions: int = 48,
        seed: int = 0,
    ) -> None:
        self.intent_weight = intent_weight
        self.source_weight = source_weight
        self.min_df = min_df
        self.max_features = max_features
        self.context_weight = context_weight
        self.context_dimensions = context_dimensions
        self.seed = seed
        self.words: TfidfVectorizer | None = None
        self.intents: list[str] = []
        self.sources: list[str] = []
        self.context: np.ndarray | None = None  # (words + intents) x dimensions

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
        if self.context_weight > 0:
            features = sp.hstack([words, _one_hot(memories, "intent", self.intents)], format="csr")
            context = ppmi_embedding(features, memories["person_id"], self.context_dimensions, self.seed)
            self.context = context.astype(np.float32)  # pickled with every MLflow model version
        return words

    def transform(self, memories: pl.DataFrame) -> sp.csr_matrix:
        """L2-normalised rows, one per memory; unseen intents, sources and words add nothing."""
        if self.words is None:
            raise RuntimeError("MemoryVectorizer.transform called before fit")
        return self._stack(memories, self._word_tfidf(memories))

    def _word_tfidf(self, memories: pl.DataFrame) -> sp.csr_matrix:
        """``self.words.transform`` of the memory texts, bit for bit, with the n-grams counted in Polars.

        scikit-learn tokenises one text at a time in Python (0.2 s for a small day's 28-day window,
        every drift day); the arithmetic after the counts is scikit-learn's own, in its order and
        precision: float32 counts, 1 + log, times idf, rows L2-normalised.
        """
        counts, terms = ngram_counts(memories["text"], (1, 2))
        columns = pl.Series(terms, dtype=pl.String).replace_strict(
            self.words.vocabulary, default=-1, return_dtype=pl.Int64).to_numpy()
        known = np.flatnonzero(columns >= 0)
        counts = counts[:, known]
        tf = sp.csr_matrix(
            (counts.data.astype(np.float32), columns[known][counts.indices], counts.indptr),
            shape=(memories.height, len(self.words.vocabulary)),
        )
        tf.sort_indices()
        np.log(tf.data, tf.data)
        tf.data += 1.0
        tf.data *= self.words.idf_[tf.indices]
        return normalize(tf, copy=False)

    def fit_transform(self, memories: pl.DataFrame) -> sp.csr_matrix:
        return self._stack(memories, self._fit_blocks(memories))

    def _stack(self, memories: pl.DataFrame, word_tfidf: sp.csr_matrix) -> sp.csr_matrix:
        words = normalize(word_tfidf)
        intents = _one_hot(memories, "intent", self.intents)
        sources = _one_hot(memories, "sources", self.sources)
        blocks = [words, self.intent_weight * intents, self.source_weight * normalize(sources)]
        if self.context is not None:
            features = sp.hstack([words, intents], format="csr")
            blocks.append(sp.csr_matrix(self.context_weight * normalize(features @ self.context)))
        return normalize(sp.hstack(blocks, format="csr", dtype=np.float32))

    @property
    def feature_names(self) -> list[str]:
        """Column names: words, then ``intent=<intent>``, then ``source=<source>``."""
        if self.words is None:
            raise RuntimeError("MemoryVectorizer is not fitted")
        context = [] if self.context is None else [f"context={axis}" for axis in range(self.context.shape[1])]
        return (
            list(self.words.get_feature_names_out())
            + [f"intent={name}" for name in self.intents]
            + [f"source={name}" for name in self.sources]
            + context
        )


def ppmi_embedding(features: sp.csr_matrix, person_ids: pl.Series, dimensions: int = 48, seed: int = 0) -> np.ndarray:
    """Dense vector per feature column from the people who use it: PPMI of person x feature, truncated SVD.

    ``features``: memory x feature weights; rows are summed per person. PPMI keeps where a
    person uses a feature more than chance (log p(person, feature) / p(person) p(feature)
    > 0); the right singular vectors scaled by the square root of their singular values
    are the feature vectors (Levy & Goldberg's SVD of PPMI), L2-normalised. Features no
    one uses get a zero row.
    """
    person_codes = person_ids.rank("dense").cast(pl.Int64).to_numpy() - 1
    membership = sp.csr_matrix(
        (np.ones(person_codes.size), (person_codes, np.arange(person_codes.size))),
        shape=(person_codes.max() + 1, person_codes.size),
    )
    counts = sp.csr_matrix(membership @ (features > 0).astype(np.float64))
    total = counts.sum()
    person_totals = np.asarray(counts.sum(axis=1)).ravel()
    feature_totals = np.asarray(counts.sum(axis=0)).ravel()
    coo = counts.tocoo()
    pmi = np.log(coo.data * total / (person_totals[coo.row] * feature_totals[coo.col]))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)
    dimensions = min(dimensions, min(ppmi.shape) - 1)
    if dimensions < 1:
        return np.zeros((features.shape[1], 1))
    svd = TruncatedSVD(n_components=dimensions, random_state=seed).fit(ppmi)
    return normalize(svd.components_.T * np.sqrt(svd.singular_values_))


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
