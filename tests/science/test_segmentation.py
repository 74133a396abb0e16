import numpy as np
import polars as pl
import scipy.sparse as sp
from science_builders import make_events
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from dagster_project.science.daily import memories_for_day
from dagster_project.science.intent_families import apply_intent_families, fit_intent_families
from dagster_project.science.segmentation import (
    ROW_SPACE_MAX_ROWS,
    IntentModel,
    assign_intents,
    fit_through_row_space,
    row_space,
    segment_intent_memories,
)

TRAINING = make_events(
    [
        ("t1", "x", 0, "web", "page_view", "I1", "tennis_gear", "Wilson Pro Staff tennis racket"),
        ("t2", "x", 1, "web", "page_view", "I2", "tennis_gear", "Babolat tennis strings"),
        ("t3", "x", 2, "web", "page_view", "I3", "tennis_gear", "Wimbledon tennis balls"),
        ("c1", "x", 90, "web", "page_view", "I4", "kitchen", "Cast iron skillet"),
        ("c2", "x", 91, "web", "page_view", "I5", "kitchen", "Chef knife for pasta"),
        ("c3", "x", 92, "web", "page_view", "I6", "kitchen", "Sourdough recipe book"),
    ]
)


def memories_of(rows, gap_minutes=30):
    events = pl.concat([TRAINING, make_events(rows)])
    memories = segment_intent_memories(assign_intents(events), gap_minutes=gap_minutes)
    return memories.filter(pl.col("person_id") != "x")


def test_gap_of_inactivity_ends_a_memory():
    rows = [
        ("e1", "p", 0, "web", "page_view", "I1", "tennis_gear", "Wilson Pro Staff tennis racket"),
        ("e2", "p", 10, "web", "page_view", "I2", "tennis_gear", "Babolat tennis strings"),
        ("e3", "p", 55, "web", "page_view", "I3", "tennis_gear", "Wimbledon tennis balls"),
    ]
    assert memories_of(rows)["event_ids"].to_list() == [["e1", "e2"], ["e3"]]
    assert memories_of(rows, gap_minutes=60)["event_ids"].to_list() == [["e1", "e2", "e3"]]


def test_change_of_intent_ends_a_memory():
    rows = [
        ("e1", "p", 0, "web", "page_view", "I1", "tennis_gear", "Wilson Pro Staff tennis racket"),
        ("e2", "p", 1, "web", "page_view", "I2", "tennis_gear", "Babolat tennis strings"),
        ("e3", "p", 2, "web", "page_view", "I4", "kitchen", "Cast iron skillet"),
    ]
    memories = memories_of(rows)
    assert memories["intent"].to_list() == ["tennis_gear", "kitchen"]
    assert memories["n_events"].to_list() == [2, 1]


def test_intent_model_infers_category_from_text_and_abstains_on_unknown_words():
    model = IntentModel().fit(TRAINING["text"], TRAINING["category"])
    predicted = model.predict(
        pl.Series(["tennis racket strings", "skillet recipe", "zzz qqq", "", None])
    )
    assert predicted.to_list() == ["tennis_gear", "kitchen", None, None, None]


def test_the_intent_model_fitted_through_the_span_of_its_training_rows_is_the_one_fitted_on_the_terms():
    texts = [*TRAINING["text"], "tennis court shoes", "tennis court shoes", "skillet and pasta pot", "garden hose"]
    categories = np.array([*TRAINING["category"], "tennis_gear", "shoes", "kitchen", "garden"])
    counts = np.array([3, 1, 1, 2, 1, 1, 4, 1, 1, 2])
    queries = ["tennis shoes", "pasta skillet", "garden tennis", "court", "hose recipe"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
    terms = vectorizer.fit_transform(texts)
    coordinates, _ = row_space(terms)
    # Fewer rows than terms; one text under two categories makes two equal rows, so the span has one row less.
    assert terms.shape[0] < terms.shape[1] and coordinates.shape == (terms.shape[0], terms.shape[0] - 1)
    np.testing.assert_allclose(coordinates @ coordinates.T, (terms @ terms.T).toarray(), atol=1e-12)
    on_terms = LogisticRegression(max_iter=1000).fit(terms, categories, sample_weight=counts)
    through_span = fit_through_row_space(LogisticRegression(max_iter=1000), terms, categories, counts)
    assert through_span.coef_.shape == on_terms.coef_.shape
    expected = on_terms.predict_proba(vectorizer.transform(queries))
    np.testing.assert_allclose(through_span.predict_proba(vectorizer.transform(queries)), expected, atol=1e-6)
    model = IntentModel().fit(pl.Series(np.repeat(texts, counts)), pl.Series(np.repeat(categories, counts)))
    confident = np.where(expected.max(axis=1) >= model.min_confidence, on_terms.classes_[expected.argmax(axis=1)], None)
    assert model.predict(pl.Series(queries)).to_list() == confident.tolist()
    assert None in confident.tolist() and len(set(confident.tolist()) - {None}) > 1  # both branches are checked

    # Two classes (one coefficient row); no span where it would not pay: as many rows as terms, or too many rows.
    binary = categories != "kitchen"
    np.testing.assert_allclose(
        fit_through_row_space(LogisticRegression(), terms, binary, counts).predict_proba(terms),
        LogisticRegression().fit(terms, binary, sample_weight=counts).predict_proba(terms), atol=1e-6)
    square = terms[:, : terms.shape[0]]
    assert row_space(square) is None
    np.testing.assert_array_equal(fit_through_row_space(LogisticRegression(), square, binary, counts).coef_,
                                  LogisticRegression().fit(square, binary, sample_weight=counts).coef_)
    assert row_space(sp.random(ROW_SPACE_MAX_ROWS + 1, 5 * ROW_SPACE_MAX_ROWS, density=0.001, format="csr")) is None


def test_uncategorised_events_take_the_inferred_intent():
    rows = [
        ("e1", "p", 0, "web", "search", None, None, "wimbledon tennis"),
        ("e2", "p", 1, "social", "like", "P1", None, "my new skillet recipe"),
        ("e3", "p", 2, "iot", "reading", None, None, "tennis session"),
    ]
    memories = memories_of(rows)
    assert memories["intent"].to_list() == ["tennis_gear", "kitchen", "tennis_gear"]


def test_events_without_inferable_intent_join_their_neighbours():
    rows = [
        ("e0", "p", 0, "crm", "ticket", None, None, None),  # opens the session: joins the next run
        ("e1", "p", 1, "web", "page_view", "I1", "tennis_gear", "Babolat tennis strings"),
        ("e2", "p", 2, "iot", "reading", None, None, "zzz qqq"),  # vague: joins the run before
        ("e3", "p", 3, "web", "page_view", "I4", "kitchen", "Cast iron skillet"),
        ("e4", "p", 200, "crm", "ticket", None, None, "zzz"),  # a session of its own: no memory
    ]
    memories = memories_of(rows)
    assert memories["event_ids"].to_list() == [["e0", "e1", "e2"], ["e3"]]
    assert memories["sources"].to_list() == [["crm", "iot", "web"], ["web"]]
    # the facts labels ground in: real categories only (no inferred intent), every action
    assert memories["categories"].to_list() == [["tennis_gear"], ["kitchen"]]
    assert memories["actions"].to_list() == [["page_view", "reading", "ticket"], ["page_view"]]


def test_people_are_segmented_separately_even_when_interleaved():
    rows = [
        ("a1", "pa", 0, "web", "page_view", "I1", "tennis_gear", "Babolat tennis strings"),
        ("b1", "pb", 1, "web", "page_view", "I1", "tennis_gear", "Babolat tennis strings"),
        ("a2", "pa", 2, "web", "page_view", "I2", "tennis_gear", "Wimbledon tennis balls"),
    ]
    memories = memories_of(rows)
    assert dict(zip(memories["person_id"], memories["event_ids"].to_list(), strict=True)) == {
        "pa": ["a1", "a2"],
        "pb": ["b1"],
    }


def test_memory_row_has_readable_summary_text_and_stable_id():
    rows = [
        ("e1", "p", 0, "web", "search", None, None, "wimbledon tennis"),
        ("e2", "p", 1, "web", "page_view", "I1", "tennis_gear", "Wilson Pro Staff tennis racket"),
        ("e3", "p", 2, "web", "page_view", "I2", "tennis_gear", "Babolat tennis strings"),
        ("e4", "p", 3, "web", "page_view", "I2", "tennis_gear", "Babolat tennis strings"),
        ("e5", "p", 4, "social", "like", "P1", None, "What a final at Wimbledon tennis"),
    ]
    memory = memories_of(rows).row(0, named=True)
    assert memory["summary"] == (
        "searched 'wimbledon tennis'; "
        "viewed 3 tennis_gear pages: Wilson Pro Staff tennis racket, Babolat tennis strings; "
        "liked a post: 'What a final at Wimbledon tennis'"
    )
    assert memory["text"].startswith("wimbledon tennis Wilson Pro Staff")
    assert memory["start_ts"] < memory["end_ts"]
    assert memory["n_events"] == 5
    assert memory["sources"] == ["social", "web"]
    assert memories_of(rows)["memory_id"][0] == memory["memory_id"]
    assert memory["memory_id"] != memories_of([("e1", "q", *rows[0][2:])])["memory_id"][0]


def test_intent_model_with_one_or_no_category():
    one = IntentModel().fit(
        pl.Series(["tennis racket", "tennis balls"]), pl.Series(["tennis_gear"] * 2)
    )
    assert one.predict(pl.Series(["racket", "pasta"])).to_list() == ["tennis_gear", None]
    none = IntentModel().fit(pl.Series(["tennis racket"]), pl.Series([None], dtype=pl.String))
    assert none.predict(pl.Series(["tennis racket"])).to_list() == [None]


def test_the_pipeline_path_cuts_the_memories_of_the_separate_steps_whatever_the_row_order():
    # memories_for_day sorts once, cuts sessions once for the families and the segmentation, and fits
    # the intent model beside the sort; the API composes the separate steps.
    rows = []
    for person in range(4):  # rackets and strings in one sitting: one family
        rows += [
            (f"r{person}", f"p{person}", 0, "web", "page_view", "I1", "tennis_rackets", "Wilson Pro Staff racket"),
            (f"s{person}", f"p{person}", 5, "web", "click", "I2", "tennis_strings", "Babolat tennis strings"),
            (f"q{person}", f"p{person}", 6, "web", "search", None, None, "wimbledon tennis"),
            (f"k{person}", f"p{person}", 120, "crm", "order", "I4", "kitchen", "Cast iron skillet"),
        ]
    for person in range(2):  # skillets and pans together in two sittings only, however many events: no family
        rows += [(f"c{person}-{n}", f"p{person}", 121 + n, "web", "page_view", "I5", category, "Pan")
                 for n, category in enumerate(["kitchen", "cookware"] * 3)]
    events = pl.concat([TRAINING, make_events(rows)])
    families = fit_intent_families(events)
    assert families["tennis_strings"] == families["tennis_rackets"] != families["kitchen"] != families["cookware"]
    expected = segment_intent_memories(apply_intent_families(assign_intents(events), families))
    assert memories_for_day(events.sample(fraction=1.0, shuffle=True, seed=3)).equals(expected)
    assert expected.filter(pl.col("person_id") == "p0")["summary"][0] == (
        "viewed a tennis_rackets page: Wilson Pro Staff racket; clicked an item: Babolat tennis strings; "
        "searched 'wimbledon tennis'"
    )
