import pickle

import numpy as np
import polars as pl
import pytest
from scipy.sparse.linalg import norm

from dagster_project.science.vectorize import MemoryVectorizer, ppmi_embedding

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


def test_words_are_weighted_exactly_as_scikit_learn_weighs_them():
    vectorizer = MemoryVectorizer(min_df=1).fit(MEMORIES)
    texts = ["Tennis racket, tennis strings!", None, "the and", "pasta zzz recipe recipe", "wimbledon tennis racket"]
    memories = pl.DataFrame({"text": texts, "intent": ["kitchen"] * 5, "sources": [["web"]] * 5})
    ours = vectorizer._word_tfidf(memories)
    theirs = vectorizer.words.transform([text or "" for text in texts])
    assert ours.nnz == theirs.nnz > 0
    for attribute in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(ours, attribute), getattr(theirs, attribute))
    assert ours.dtype == theirs.dtype == np.float32


def test_pickle_round_trip_gives_the_same_vectors():
    vectorizer = MemoryVectorizer(min_df=1).fit(MEMORIES)
    restored = pickle.loads(pickle.dumps(vectorizer))
    assert (restored.transform(MEMORIES) != vectorizer.transform(MEMORIES)).nnz == 0


def test_transform_before_fit_fails_clearly():
    with pytest.raises(RuntimeError, match="before fit"):
        MemoryVectorizer().transform(MEMORIES)


def people_memories() -> pl.DataFrame:
    """Ten tennis people and ten cooks; each also writes one short note whose words name no persona
    ("grip tape" for the tennis people, "cast iron" for the cooks)."""
    rows = []
    for person in range(20):
        tennis = person < 10
        own = ["tennis racket wimbledon", "tennis strings serve"] if tennis else ["pasta skillet recipe", "pasta oven bake"]
        note = "grip tape" if tennis else "cast iron"
        for text in [*own, note]:
            rows.append({"person_id": f"p{person:02d}", "text": text, "intent": "tennis" if tennis else "kitchen",
                         "sources": ["web"]})
    return pl.DataFrame(rows).with_columns(pl.when(pl.col("text").is_in(["grip tape", "cast iron"]))
                                           .then(None).otherwise(pl.col("intent")).alias("intent"))


def test_ppmi_embedding_puts_features_of_the_same_people_together():
    memories = people_memories()
    words = MemoryVectorizer(min_df=1).fit(memories).words
    features = words.transform(memories["text"].to_list())
    vectors = ppmi_embedding(features, memories["person_id"], dimensions=4)
    column = words.vocabulary_
    similarity = vectors @ vectors.T
    assert similarity[column["grip"], column["tennis"]] > 0.8
    assert similarity[column["grip"], column["pasta"]] < 0.2
    assert similarity[column["cast"], column["skillet"]] > 0.8


def test_the_context_block_places_a_persona_free_note_with_its_people():
    memories = people_memories()
    note, tennis, cooking = 2, 0, 30  # rows: grip tape and tennis racket wimbledon of p00, pasta skillet recipe of p10
    plain = MemoryVectorizer(min_df=1).fit_transform(memories)
    assert (plain[note] @ plain[tennis].T).toarray()[0, 0] < 0.1  # only the shared source
    vectorizer = MemoryVectorizer(min_df=1, context_weight=0.6, context_dimensions=4)
    X = vectorizer.fit_transform(memories)
    assert (X[note] @ X[tennis].T).toarray()[0, 0] > (X[note] @ X[cooking].T).toarray()[0, 0] + 0.2
    np.testing.assert_allclose(norm(X, axis=1), 1.0, rtol=1e-5)
    # A new memory needs only its text and intent: the context comes from the fitted vectors.
    new = vectorizer.transform(pl.DataFrame({"text": ["grip tape"], "intent": [None], "sources": [["web"]]},
                                            schema={"text": pl.String, "intent": pl.String, "sources": pl.List(pl.String)}))
    assert (new @ X[tennis].T).toarray()[0, 0] > (new @ X[cooking].T).toarray()[0, 0] + 0.2
