"""Intent memories: contiguous runs of one person's events that share an intent.

Two replaceable steps:

* ``assign_intents`` gives every event an intent: its category where it has one,
  else the category an ``IntentModel`` infers from its text.
* ``segment_intent_memories`` cuts each person's timeline into memories: a gap of
  inactivity longer than ``gap_minutes`` or a change of intent ends a memory.

Events whose intent cannot be inferred (no category, and text that is empty or too
vague for the model) join the memory they sit in: they take the intent of the
preceding event of the same session, or of the following one when they open the
session. A session with no inferable event at all yields no memory, because a memory
without intent evidence would only feed a noise cluster.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from dagster_project.science.intent_families import sessions

INTENT = "intent"
SESSION = "session"

# How each action reads in a summary. "{count}" becomes "a post" / "3 posts" (a page
# view's noun is "<intent> page"); free text (queries, posts, tickets) is quoted,
# titles and device context are not. Unlisted actions read "<action> 2 events: ...".
_ACTION_PHRASES = pl.DataFrame(
    [
        ("search", "searched", None, True, " "),
        ("page_view", "viewed {count}", None, False, ": "),
        ("click", "clicked {count}", "item", False, ": "),
        ("add_to_cart", "added {count} to the cart", "item", False, ": "),
        ("order", "ordered {count}", "item", False, ": "),
        ("like", "liked {count}", "post", True, ": "),
        ("share", "shared {count}", "post", True, ": "),
        ("comment", "wrote {count}", "comment", True, ": "),
        ("ticket", "opened {count}", "support ticket", True, ": "),
        ("reading", "logged {count}", "device reading", False, ": "),
    ],
    schema={
        "action": pl.String,
        "template": pl.String,
        "noun": pl.String,
        "quote": pl.Boolean,
        "separator": pl.String,
    },
    orient="row",
)
_MAX_TEXTS_PER_PHRASE = 3
# Most training rows for which the intent model is fitted in their span (`row_space`): the span
# costs an eigendecomposition of rows x rows (0.05 s at 637 rows, 0.2 s at 1,000, 1.4 s at 2,000 on one core).
ROW_SPACE_MAX_ROWS = 1_000


class IntentModel:
    """Text -> category classifier trained on the events that carry a category.

    TF-IDF over word uni/bigrams (English stop words dropped) with a multinomial
    logistic regression. A text is left without intent (None) when it shares no word
    with the training texts or when the top class probability is below
    ``min_confidence``: a vague text should join its neighbours' memory rather than
    start a wrong one.
    """

    def __init__(self, min_confidence: float = 0.4, C: float = 1.0) -> None:
        self.min_confidence = min_confidence
        self.C = C
        self._vectorizer: TfidfVectorizer | None = None
        self._classifier: LogisticRegression | None = None
        self._classes = np.array([], dtype=object)

    def fit(self, texts: pl.Series, categories: pl.Series) -> IntentModel:
        """Learn category from text over the (text, category) pairs with both present."""
        pairs = (
            pl.DataFrame({"text": texts, "category": categories})
            .drop_nulls()
            .filter(pl.col("text").str.strip_chars() != "")
            .group_by("text", "category")
            .agg(pl.len().alias("count"))
            .sort("text", "category")
        )
        self._vectorizer, self._classifier = None, None
        self._classes = pairs["category"].unique().sort().to_numpy()
        if pairs.is_empty():
            return self
        self._vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, stop_words="english"
        )
        try:
            features = self._vectorizer.fit_transform(pairs["text"].to_list())
        except ValueError:  # only stop words: nothing to learn from
            self._vectorizer = None
            return self
        if self._classes.size > 1:
            self._classifier = fit_through_row_space(
                LogisticRegression(C=self.C, max_iter=1000), features, pairs["category"].to_numpy(),
                pairs["count"].to_numpy(),
            )
        return self

    def predict(self, texts: pl.Series) -> pl.Series:
        """Inferred category per text; null where the model has no confident answer."""
        if self._vectorizer is None or texts.is_empty():
            return pl.Series(INTENT, [None] * texts.len(), dtype=pl.String)
        features = self._vectorizer.transform(texts.fill_null("").to_list())
        if self._classifier is None:  # one category: any known word points to it
            probabilities = np.ones((features.shape[0], 1))
        else:
            probabilities = self._classifier.predict_proba(features)
        confident = (features.getnnz(axis=1) > 0) & (
            probabilities.max(axis=1) >= self.min_confidence
        )
        predicted = np.where(confident, self._classes[probabilities.argmax(axis=1)], None)
        return pl.Series(INTENT, predicted.tolist(), dtype=pl.String)


def row_space(features: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows' coordinates in an orthonormal basis of their span, `U s`, and `U / s`, with which that basis over
    the columns is `(U / s).T @ features` (from `features @ features.T = U s² Uᵀ`, directions of numerically zero
    extent dropped). None when the rows are not fewer than the columns (nothing to gain) or too many for an
    eigendecomposition."""
    rows, columns = features.shape
    if rows >= columns or rows > ROW_SPACE_MAX_ROWS:
        return None
    squared, vectors = np.linalg.eigh((features @ features.T).toarray())
    kept = squared > squared.max() * rows * np.finfo(float).eps
    extent, vectors = np.sqrt(squared[kept]), vectors[:, kept]
    return vectors * extent, vectors / extent


def fit_through_row_space(
    classifier: LogisticRegression, features: sp.csr_matrix, targets: np.ndarray, sample_weight: np.ndarray
) -> LogisticRegression:
    """`classifier` fitted on `features` by way of the rows' coordinates in their span (`row_space`), its
    coefficients then mapped back onto the columns: it predicts from `features`' columns as if fitted on them.

    An L2-penalised linear model's coefficients lie in the span of its training rows (a part outside it changes
    no training score and only adds to the penalty), and an orthonormal change of coordinates keeps the scores
    and the penalty: the same optimum, reached on rows x rows numbers instead of rows x columns. From zero,
    L-BFGS takes the same steps; only its stop test (the largest gradient component) reads other coordinates,
    so it can stop an iteration or a few apart: on random small problems (5-120 rows) 9 of 284 fits did, and
    their probabilities then differed by up to 5e-3. The 1M-event day's intent model (637 pairs over 3,110 terms,
    53 categories) takes the same 32 iterations, its probabilities agree within 3e-10 and its fit takes 0.32 s
    instead of 0.74 s on one core; no prediction changed on that day, the 200 x 500 history or the demo.
    """
    span = row_space(features)
    if span is None:
        return classifier.fit(features, targets, sample_weight=sample_weight)
    coordinates, scaled_vectors = span
    classifier.fit(coordinates, targets, sample_weight=sample_weight)
    classifier.coef_ = np.asarray((classifier.coef_ @ scaled_vectors.T) @ features)
    classifier.n_features_in_ = features.shape[1]
    return classifier


def assign_intents(events: pl.DataFrame, model: IntentModel | None = None) -> pl.DataFrame:
    """Add an ``intent`` column: the category, else the model's guess from the text.

    Without a model, a fresh ``IntentModel`` is fitted on these events' categorised
    texts. Predictions run once per distinct uncategorised text.
    """
    if model is None:
        model = IntentModel().fit(events["text"], events["category"])
    unknown_texts = events.filter(
        pl.col("category").is_null() & pl.col("text").is_not_null()
    ).select(pl.col("text").unique().sort())
    inferred = model.predict(unknown_texts["text"])
    # A lookup, not a join: only the uncategorised rows need it, and no column is copied.
    guess = pl.col("text").replace_strict(unknown_texts["text"], inferred, default=None, return_dtype=pl.String)
    return events.with_columns(
        pl.when(pl.col("category").is_null()).then(guess).otherwise(pl.col("category")).alias(INTENT)
    )


def segment_intent_memories(events: pl.DataFrame, gap_minutes: float = 30) -> pl.DataFrame:
    """One row per intent memory from events that carry an ``intent`` column.

    Columns: memory_id, person_id, event_date, start_ts, end_ts, intent, n_events,
    sources (sorted), categories and actions (distinct, sorted: the facts persona labels
    and their claims are grounded in), summary, event_ids (in time order), text (all event texts).
    """
    ordered = events.sort("person_id", "ts", "event_id")
    return segment_sessions(ordered.with_columns(sessions(ordered, gap_minutes).alias(SESSION)))


def segment_sessions(events: pl.DataFrame) -> pl.DataFrame:
    """`segment_intent_memories` of events already sorted by person, time and id and numbered by ``session``."""
    runs = (
        events.with_columns(pl.col(INTENT).forward_fill().backward_fill().over(SESSION))
        .filter(pl.col(INTENT).is_not_null())
        .with_columns(
            ((pl.col(SESSION) != pl.col(SESSION).shift(1)) | (pl.col(INTENT) != pl.col(INTENT).shift(1)))
            .fill_null(True)
            .cum_sum()
            .set_sorted()  # a running count: grouping by it takes the fast path for sorted keys
            .alias("_run"),
            # Sets of few distinct strings are collected as integer codes: an Enum of the sorted
            # names sorts like the names, and a code is cheaper to hash than a string.
            *[pl.col(column).cast(pl.Enum(events[column].drop_nulls().unique().sort()))
              for column in ("source", "category", "action")],
        )
    )
    # Runs are numbered in (person, time) order; keeping group order keeps the memories sorted.
    memories = runs.group_by("_run", maintain_order=True).agg(
        pl.col("person_id").first(),
        pl.col("event_date").first(),
        pl.col("ts").min().alias("start_ts"),
        pl.col("ts").max().alias("end_ts"),
        pl.col(INTENT).first(),
        pl.len().cast(pl.Int64).alias("n_events"),
        pl.col("source").unique().sort().alias("sources"),
        pl.col("category").drop_nulls().unique().sort().alias("categories"),
        pl.col("action").unique().sort().alias("actions"),
        pl.col("event_id"),
        pl.col("event_id").first().alias("_first_event_id"),
        pl.col("text").drop_nulls().alias("text"),
    )
    return (
        memories.with_columns(
            # Joined after grouping: `str.join` inside the aggregation costs twice as much.
            pl.col("text").list.join(" "),
            pl.col("sources", "categories", "actions").cast(pl.List(pl.String)),
            _summaries(runs),
            _memory_ids(memories["person_id"], memories["_first_event_id"]).alias("memory_id"),
        )
        .select(
            "memory_id",
            "person_id",
            "event_date",
            "start_ts",
            "end_ts",
            INTENT,
            "n_events",
            "sources",
            "categories",
            "actions",
            "summary",
            pl.col("event_id").alias("event_ids"),
            "text",
        )
    )


def _summaries(runs: pl.DataFrame) -> pl.Series:
    """Readable account of each run, in run order: one phrase per action, in order of first use."""
    # Groups kept in order of first appearance: runs in order, actions in order of first use.
    phrases = runs.lazy().group_by("_run", "action", maintain_order=True).agg(
        pl.len().alias("n"),
        pl.col(INTENT).first(),
        pl.col("text").drop_nulls().unique(maintain_order=True).head(_MAX_TEXTS_PER_PHRASE).alias("texts"),
    ).with_columns(
        pl.when(pl.col("action") == "page_view").then(pl.col(INTENT)).otherwise(pl.lit("")).alias("_page_intent")
    )
    heads = _phrase_heads(phrases.select("action", "n", "_page_intent").unique())
    # 'a', 'b': quotes around the joined list, not around each element (list.eval costs 10x more).
    listed = pl.col("quote_mark") + pl.col("texts").list.join(pl.col("between")) + pl.col("quote_mark")
    phrase = pl.when(pl.col("texts").list.len() > 0).then(
        pl.col("head") + pl.col("separator") + listed
    ).otherwise(pl.col("head"))
    return (
        phrases.join(heads, on=["action", "n", "_page_intent"], how="left", maintain_order="left")
        .select(pl.col("_run").set_sorted(), phrase.alias("phrase"))
        .group_by("_run", maintain_order=True)
        .agg(pl.col("phrase"))
        .select(pl.col("phrase").list.join("; ").alias("summary"))
        .collect()["summary"]
    )


def _phrase_heads(keys: pl.LazyFrame) -> pl.LazyFrame:
    """The head of each phrase ("viewed 3 tennis_rackets pages", "searched", "liked a post") and how
    its texts are listed, once per distinct (action, n, _page_intent): on a 1M-event day, about a
    hundred rows instead of half a million (run, action) groups."""
    action = pl.col("action").cast(pl.String)
    count = pl.col("n").cast(pl.String)
    plural_count = count + " " + pl.col("noun") + "s"
    single_count = pl.when(pl.col("noun").str.contains("^[aeiou]")).then(pl.lit("an ")).otherwise(
        pl.lit("a ")
    ) + pl.col("noun")
    return (
        keys.with_columns(action.alias("_action"))
        .join(_ACTION_PHRASES.lazy().rename({"action": "_action"}), on="_action", how="left")
        .with_columns(
            pl.col("template").fill_null(pl.col("_action").str.replace_all("_", " ") + " {count}"),
            pl.col("noun").fill_null(
                pl.when(pl.col("_action") == "page_view")
                .then(pl.col("_page_intent") + " page")
                .otherwise(pl.lit("event"))
            ),
            pl.col("quote").fill_null(False),
            pl.col("separator").fill_null(": "),
        )
        .select(
            "action",
            "n",
            "_page_intent",
            pl.col("template").str.replace(
                "{count}", pl.when(pl.col("n") == 1).then(single_count).otherwise(plural_count), literal=True
            ).alias("head"),
            "separator",
            pl.when(pl.col("quote")).then(pl.lit("'")).otherwise(pl.lit("")).alias("quote_mark"),
            pl.when(pl.col("quote")).then(pl.lit("', '")).otherwise(pl.lit(", ")).alias("between"),
        )
    )


def _memory_ids(person_ids: pl.Series, first_event_ids: pl.Series) -> pl.Series:
    """Stable id per memory: a hash of its person and first event (no vectorised hashlib)."""
    keys = (person_ids + "|" + first_event_ids).to_list()
    return pl.Series(
        "memory_id",
        ["mem_" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest() for key in keys],
        dtype=pl.String,
    )
