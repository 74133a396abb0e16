"""Lookup tables derived from the catalogue, laid out flat so whole days of events can index them at once."""

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote_plus

import numpy as np
import polars as pl

from .catalog import PERSONAS, Persona
from .formats import numbered_ids
from .randomness import stream

ITEM_POPULARITY_EXPONENT = 0.8  # Zipf-like: a few items of each persona draw most of the traffic


@dataclass(frozen=True)
class Vocabulary:
    """Texts of all personas in one flat array; persona p owns `values[offsets[p]:offsets[p] + counts[p]]`."""

    values: pl.Series
    offsets: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, per_persona: Sequence[Sequence[str]]) -> "Vocabulary":
        counts = np.array([len(texts) for texts in per_persona], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        values = pl.Series([text for texts in per_persona for text in texts], dtype=pl.String)
        return cls(values=values, offsets=offsets, counts=counts)

    def draw(self, rng: np.random.Generator, persona: np.ndarray) -> np.ndarray:
        """One uniformly chosen flat index into `values` per entry of `persona`."""
        picks = (rng.random(len(persona)) * self.counts[persona]).astype(np.int64)
        return self.offsets[persona] + picks


@dataclass(frozen=True)
class World:
    personas: tuple[Persona, ...]
    items: pl.DataFrame  # item_id, persona, category, title, url, price_cents
    item_pools: tuple[np.ndarray, ...]  # per persona: row numbers into `items`
    item_weights: tuple[np.ndarray, ...]  # per persona: popularity, sums to 1
    posts: pl.DataFrame  # post_id, persona, text, tags
    post_texts: Vocabulary  # a flat index is also the row number in `posts`
    queries: Vocabulary
    query_urls: pl.Series  # aligned with queries.values
    contexts: Vocabulary
    ticket_subjects: Vocabulary
    device_types: np.ndarray
    signals: np.ndarray
    signal_means: np.ndarray
    signal_spreads: np.ndarray

    @property
    def persona_keys(self) -> list[str]:
        return [persona.key for persona in self.personas]


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower().replace("'", "")).strip("-")


def build_world(seed: int) -> World:
    personas = PERSONAS
    rng = stream(seed, "world")
    items = _items_table(personas, rng)
    pools, weights = [], []
    for persona_index in range(len(personas)):
        rows = np.flatnonzero(items["persona"].to_numpy() == persona_index)
        popularity = 1.0 / (rng.permutation(len(rows)) + 1.0) ** ITEM_POPULARITY_EXPONENT
        pools.append(rows)
        weights.append(popularity / popularity.sum())
    posts = _posts_table(personas)
    queries = Vocabulary.of([persona.queries for persona in personas])
    return World(
        personas=personas,
        items=items,
        item_pools=tuple(pools),
        item_weights=tuple(weights),
        posts=posts,
        post_texts=Vocabulary.of([[post.text for post in persona.posts] for persona in personas]),
        queries=queries,
        query_urls=pl.Series(["/search?q=" + quote_plus(query) for query in queries.values]),
        contexts=Vocabulary.of([persona.device.contexts for persona in personas]),
        ticket_subjects=Vocabulary.of([persona.ticket_subjects for persona in personas]),
        device_types=np.array([persona.device.device_type for persona in personas], dtype=object),
        signals=np.array([persona.device.signal for persona in personas], dtype=object),
        signal_means=np.array([persona.device.mean for persona in personas]),
        signal_spreads=np.array([persona.device.spread for persona in personas]),
    )


def _items_table(personas: Sequence[Persona], rng: np.random.Generator) -> pl.DataFrame:
    rows = [
        (persona_index, category.name, title, category.base_price)
        for persona_index, persona in enumerate(personas)
        for category in persona.categories
        for title in category.items
    ]
    persona_index, category, title, base_price = (list(column) for column in zip(*rows))
    price_euros = np.maximum(np.round(np.array(base_price) * rng.lognormal(0.0, 0.4, len(rows))), 1)
    return pl.DataFrame(
        {
            "item_id": numbered_ids("I", np.arange(1, len(rows) + 1), 5),
            "persona": pl.Series(persona_index, dtype=pl.Int64),
            "category": category,
            "title": title,
            "url": [f"/c/{name}/{slugify(text)}" for name, text in zip(category, title)],
            "price_cents": (price_euros * 100 - 1).astype(np.int64),
        }
    )


def _posts_table(personas: Sequence[Persona]) -> pl.DataFrame:
    rows = [
        (persona_index, post.text, list(post.tags))
        for persona_index, persona in enumerate(personas)
        for post in persona.posts
    ]
    return pl.DataFrame(
        {
            "post_id": numbered_ids("P", np.arange(1, len(rows) + 1), 5),
            "persona": pl.Series([row[0] for row in rows], dtype=pl.Int64),
            "text": [row[1] for row in rows],
            "tags": pl.Series([row[2] for row in rows], dtype=pl.List(pl.String)),
        }
    )
