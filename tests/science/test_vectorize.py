import pickle

import numpy as np
import polars as pl
import pytest
from scipy.sparse.linalg import norm

from dagster_project.science.vectorize import MemoryVectorizer

MEMORIES = pl.DataFrame(
    {
        "text": [
            "tennis racket wimbledon",
            "tennis racket strings",
            "pasta skillet recipe",
            "pasta oven recipe",
        ],
        "intent": ["tennis_gear", "tennis_gear", "kitchen", "kitchen"],
        "sources": [["web", "social"], ["web"], ["web"], ["crm"]],
    }
)


def test_rows_are_unit_length_and_similar_memories_are_closer():
    X = MemoryVectorizer(min_df=1).fit_transform(MEMORIES)
    np.testing.assert_allclose(norm(X, axis=1), 1.0, rtol=1e-5)
    similarity = (X @ X.T).toarray()
    assert similarity[0, 1] > 0.5 > similarity[0, 2]
    assert similarity[2, 3] > similarity[1, 2]


def test_intent_and_sources_are_features():
    vectorizer = MemoryVectorizer(min_df=1).fit(MEMORIES)
    X = vectorizer.transform(MEMORIES)
    names = vectorizer.feature_names
    assert X.shape[1] == len(names)
    assert X[0, names.index("intent=tennis_gear")] > 0 and X[0, names.index("intent=kitchen")] == 0
    assert X[0, names.index("source=social")] > 0 and X[1, names.index("source=social")] == 0


def test_unseen_intents_sources_and_words_add_nothing():
    vectorizer = MemoryVectorizer(min_df=1).fit(MEMORIES)
    unseen = pl.DataFrame({"text": ["zzz"], "intent": ["garden"], "sources": [["iot"]]})
    assert vectorizer.transform(unseen).nnz == 0


def test_pickle_round_trip_gives_the_same_vectors():
    vectorizer = MemoryVectorizer(min_df=1).fit(MEMORIES)
    restored = pickle.loads(pickle.dumps(vectorizer))
    assert (restored.transform(MEMORIES) != vectorizer.transform(MEMORIES)).nnz == 0


def test_transform_before_fit_fails_clearly():
    with pytest.raises(RuntimeError, match="before fit"):
        MemoryVectorizer().transform(MEMORIES)
