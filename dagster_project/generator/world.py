"""Lookup tables derived from the catalogue, laid out flat so whole days of events can index them at once.

Two worlds: "easy" (catalog.PERSONAS, every category and word owned by one persona: a fast test
fixture) and "realistic" (the default: shared categories and brands, generic items, ambiguous
posts, a broad persona with narrower ones nested under it; see realistic.py). In the realistic
world every per-persona table has one extra last entry, the generic content everyone sees.

With `new_persona_at_drift` the world also holds catalog.HOME_IMPROVER, last among the personas:
nobody holds it before the drift day (population.py). Its items come after every other item and
draw from their own random stream, so every other item, price, popularity and post id is the same
as in the world without it.
"""

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote_plus

import numpy as np
import polars as pl

from .catalog import HOME_IMPROVER, PERSONAS, Category, Persona, Post
from .formats import numbered_ids
from .randomness import stream
from .realistic import (
    GENERIC_CATEGORIES,
    GENERIC_POSTS,
    GENERIC_QUERIES,
    PARENT_PERSONA,
    SHARED_CATEGORIES,
    SHARED_POSTS,
    SHARED_QUERIES,
    SPORTS_FAN,
)

WORLDS = ("realistic", "easy")
ITEM_POPULARITY_EXPONENT = 0.8  # easy world: Zipf-like over each persona's whole pool
CATEGORY_ZIPF_EXPONENT = 1.0  # realistic world: Zipf within each category
SHARED_CATEGORY_SHARE = 0.4  # of a persona's on-intent views, spread over the shared categories it browses
OWN_TASTE_SHARE = 0.5  # in a shared category, popularity mixes everyone's ranking with the persona's own


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
    kind: str
    personas: tuple[Persona, ...]
    established: int  # personas held from the first day: the first `established` of `personas`
    parents: tuple[str | None, ...]  # per persona: the broad persona it is nested under
    categories: tuple[tuple[str, ...], ...]  # per persona: every category it browses (own and shared)
    items: pl.DataFrame  # item_id, category, title, url, price_cents
    item_pools: tuple[np.ndarray, ...]  # per persona (+ generic): row numbers into `items`
    item_weights: tuple[np.ndarray, ...]  # per persona (+ generic): popularity, sums to 1
    posts: pl.DataFrame  # post_id, text, tags; a shared post has one row per persona, same post_id
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

    @property
    def realistic(self) -> bool:
        return self.kind == "realistic"

    @property
    def emerging(self) -> int | None:
        """The index of the persona nobody holds before the drift day (None without one)."""
        return self.established if len(self.personas) > self.established else None

    @property
    def generic(self) -> int | None:
        """The content index of generic items, posts and searches (None in the easy world)."""
        return len(self.personas) if self.realistic else None


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower().replace("'", "")).strip("-")


def build_world(seed: int, kind: str = "realistic", new_persona_at_drift: bool = False) -> World:
    """The catalogue laid out for `kind`; `new_persona_at_drift` adds HOME_IMPROVER as the last persona."""
    if kind not in WORLDS:
        raise ValueError(f"world must be one of {WORLDS}, got {kind!r}")
    established = PERSONAS + (SPORTS_FAN,) if kind == "realistic" else PERSONAS
    emerging = (HOME_IMPROVER,) if new_persona_at_drift else ()
    personas = established + emerging
    rngs = (stream(seed, "world"), stream(seed, "world", "emerging"))
    if kind == "realistic":
        items, pools, weights, categories = _realistic_items(established, emerging, *rngs)
        posts_per_persona, queries_per_persona = _realistic_texts(personas)
    else:
        items, pools, weights = _easy_items(established, emerging, *rngs)
        categories = [tuple(category.name for category in persona.categories) for persona in personas]
        posts_per_persona = [list(persona.posts) for persona in personas]
        queries_per_persona = [list(persona.queries) for persona in personas]
    queries = Vocabulary.of(queries_per_persona)
    return World(
        kind=kind,
        personas=personas,
        established=len(established),
        parents=tuple(PARENT_PERSONA.get(persona.key) if kind == "realistic" else None for persona in personas),
        categories=tuple(categories),
        items=items,
        item_pools=tuple(pools),
        item_weights=tuple(weights),
        posts=_posts_table(posts_per_persona, numbered_last=range(len(established), len(personas))),
        post_texts=Vocabulary.of([[post.text for post in posts] for posts in posts_per_persona]),
        queries=queries,
        query_urls=pl.Series(["/search?q=" + quote_plus(query) for query in queries.values]),
        contexts=Vocabulary.of([persona.device.contexts for persona in personas]),
        ticket_subjects=Vocabulary.of([persona.ticket_subjects for persona in personas]),
        device_types=np.array([persona.device.device_type for persona in personas], dtype=object),
        signals=np.array([persona.device.signal for persona in personas], dtype=object),
        signal_means=np.array([persona.device.mean for persona in personas]),
        signal_spreads=np.array([persona.device.spread for persona in personas]),
    )


def _easy_items(
    established: Sequence[Persona], emerging: Sequence[Persona], rng: np.random.Generator,
    emerging_rng: np.random.Generator,
):
    """Each persona owns its categories; Zipf-like popularity over the persona's whole pool.

    The `emerging` personas' items come last and draw from `emerging_rng`: the rest stays as without them.
    """
    items = _items_table([category for persona in established for category in persona.categories], rng)
    late = [category for persona in emerging for category in persona.categories]
    if late:
        items = pl.concat([items, _items_table(late, emerging_rng, first_number=items.height + 1)])
    pools, weights, start = [], [], 0
    for persona_index, persona in enumerate((*established, *emerging)):
        generator = rng if persona_index < len(established) else emerging_rng
        size = sum(len(category.items) for category in persona.categories)
        popularity = 1.0 / (generator.permutation(size) + 1.0) ** ITEM_POPULARITY_EXPONENT
        pools.append(np.arange(start, start + size))
        weights.append(popularity / popularity.sum())
        start += size
    return items, pools, weights


def _realistic_items(
    established: Sequence[Persona], emerging: Sequence[Persona], rng: np.random.Generator,
    emerging_rng: np.random.Generator,
):
    """Own, shared and generic categories; Zipf within each category; in a shared one, part own taste.

    The `emerging` personas' own items come last and all their draws come from `emerging_rng`:
    every other item, price and popularity stays as without them.
    """
    own = [category for persona in established for category in persona.categories]
    all_categories = own + [entry.category for entry in SHARED_CATEGORIES] + list(GENERIC_CATEGORIES)
    late = [category for persona in emerging for category in persona.categories]
    items = _items_table(all_categories, rng)
    if late:
        items = pl.concat([items, _items_table(late, emerging_rng, first_number=items.height + 1)])
    sizes = [len(category.items) for category in all_categories + late]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rows_of = {
        category.name: np.arange(start, start + size)
        for category, start, size in zip(all_categories + late, starts, sizes, strict=True)
    }

    def zipf(size: int, generator: np.random.Generator) -> np.ndarray:
        popularity = 1.0 / (generator.permutation(size) + 1.0) ** CATEGORY_ZIPF_EXPONENT
        return popularity / popularity.sum()

    everyone = {category.name: zipf(len(category.items), rng) for category in all_categories}
    everyone |= {category.name: zipf(len(category.items), emerging_rng) for category in late}
    pools, weights, categories = [], [], []
    for persona_index, persona in enumerate((*established, *emerging)):
        generator = rng if persona_index < len(established) else emerging_rng
        browsed = [entry.category.name for entry in SHARED_CATEGORIES if persona.key in entry.personas]
        parts = [(category.name, (1.0 - SHARED_CATEGORY_SHARE) / len(persona.categories), everyone[category.name])
                 for category in persona.categories]
        parts += [(name, SHARED_CATEGORY_SHARE / len(browsed),
                   (1.0 - OWN_TASTE_SHARE) * everyone[name] + OWN_TASTE_SHARE * zipf(len(rows_of[name]), generator))
                  for name in browsed]
        pools.append(np.concatenate([rows_of[name] for name, _, _ in parts]))
        weights.append(np.concatenate([share * popularity for _, share, popularity in parts]))
        categories.append(tuple(name for name, _, _ in parts))
    generic = [category.name for category in GENERIC_CATEGORIES]
    pools.append(np.concatenate([rows_of[name] for name in generic]))
    weights.append(np.concatenate([everyone[name] / len(generic) for name in generic]))
    return items, pools, [weight / weight.sum() for weight in weights], categories


def _realistic_texts(personas: Sequence[Persona]) -> tuple[list[list[Post]], list[list[str]]]:
    """Per persona its own posts and searches plus the shared ones that fit it; the generic ones last."""
    posts, queries = [], []
    for persona in personas:
        posts.append(list(persona.posts) + [Post(shared.text, shared.tags) for shared in SHARED_POSTS
                                            if persona.key in shared.personas])
        queries.append(list(persona.queries) + [shared.text for shared in SHARED_QUERIES
                                                if persona.key in shared.personas])
    return posts + [list(GENERIC_POSTS)], queries + [list(GENERIC_QUERIES)]


def _items_table(categories: Sequence[Category], rng: np.random.Generator, first_number: int = 1) -> pl.DataFrame:
    rows = [(category.name, title, category.base_price) for category in categories for title in category.items]
    category, title, base_price = (list(column) for column in zip(*rows, strict=True))
    price_euros = np.maximum(np.round(np.array(base_price) * rng.lognormal(0.0, 0.4, len(rows))), 1)
    return pl.DataFrame(
        {
            "item_id": numbered_ids("I", np.arange(first_number, first_number + len(rows)), 5),
            "category": category,
            "title": title,
            "url": [f"/c/{name}/{slugify(text)}" for name, text in zip(category, title, strict=True)],
            "price_cents": (price_euros * 100 - 1).astype(np.int64),
        }
    )


def _posts_table(per_persona: Sequence[Sequence[Post]], numbered_last: Sequence[int] = ()) -> pl.DataFrame:
    """One row per (persona, post); a post shared by several personas keeps one post_id.

    Ids follow first appearance, the posts of the `numbered_last` entries after all others': a persona
    added to the world keeps every other post's id.
    """
    flat = [post for posts in per_persona for post in posts]
    numbering = [index for index in range(len(per_persona)) if index not in numbered_last] + list(numbered_last)
    in_order = (post.text for index in numbering for post in per_persona[index])
    first_seen = {text: number for number, text in enumerate(dict.fromkeys(in_order), start=1)}
    return pl.DataFrame(
        {
            "post_id": numbered_ids("P", np.array([first_seen[post.text] for post in flat]), 5),
            "text": [post.text for post in flat],
            "tags": pl.Series([list(post.tags) for post in flat], dtype=pl.List(pl.String)),
        }
    )
