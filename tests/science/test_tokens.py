"""The Polars n-gram counter builds scikit-learn's document-term matrix."""

import pytest
from sklearn.feature_extraction.text import CountVectorizer

from dagster_project.science.tokens import ngram_counts

TEXTS = [
    "searched 'wimbledon tickets'; viewed 3 tennis_rackets pages: Wilson Pro Staff 97",
    "The best sourdough recipe and the best oven",
    "",
    None,
    "café naïve — 12 ab a_b x of the",
    "the and of",
]


@pytest.mark.parametrize("pattern", [r"(?u)\b\w\w+\b", r"(?u)\b[^\W\d_][^\W_]+\b"])
@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (1, 3)])
def test_ngram_counts_match_count_vectorizer(pattern, binary, ngram_range):
    reference = CountVectorizer(stop_words="english", token_pattern=pattern, binary=binary, ngram_range=ngram_range)
    expected = reference.fit_transform([text or "" for text in TEXTS])
    counts, vocabulary = ngram_counts(TEXTS, ngram_range, pattern, binary)
    assert list(vocabulary) == list(reference.get_feature_names_out())
    assert (counts != expected).nnz == 0


def test_ngram_counts_of_higher_orders_only_and_of_no_words():
    reference = CountVectorizer(stop_words="english", ngram_range=(2, 3))
    expected = reference.fit_transform([text or "" for text in TEXTS])
    counts, vocabulary = ngram_counts(TEXTS, (2, 3))
    assert list(vocabulary) == list(reference.get_feature_names_out())
    assert (counts != expected).nnz == 0

    counts, vocabulary = ngram_counts(["the and", None, ""], (1, 2))
    assert counts.shape == (3, 0) and vocabulary.size == 0
