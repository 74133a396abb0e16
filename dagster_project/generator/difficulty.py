"""How hard a generated world is, measured from its landing files and planted truth alone.

These shares are what makes trivial partitions (one cluster per category, words that name one
persona) fail or succeed; tests assert the realistic world's targets on them and the lead's
report quotes them for the demo world.
"""

import re
from pathlib import Path

import numpy as np
import polars as pl

from .landing import SPECS

EVENT_ENTITIES = ("web/events", "social/engagements", "iot/readings", "crm/orders", "crm/tickets")
WINDOW_DAYS = 28
SHORT_GAP_MS = 30 * 60_000
LIGHT_EVENTS = 3
MIN_PERSON_VIEWS = 20
MIN_WORD_COUNT = 5
MIN_CATEGORY_PERSONA_SHARE = 0.1
MIN_CATEGORY_VIEWS_FOR_ZIPF = 100
WORD = re.compile(r"[a-z]{3,}")


def measure_difficulty(home: Path) -> dict[str, float]:
    """Shares in [0, 1] (and the median Zipf slope) over a generated home; see the keys' comments."""
    home = Path(home)
    records = pl.read_parquet(home / "truth" / "records.parquet").filter(pl.col("broken_kind").is_null())
    web = clean_lines(home, "web/events", records)
    social = clean_lines(home, "social/engagements", records)
    views = web.filter(pl.col("item_id").is_not_null())
    generic_per_person = views.group_by("person_key").agg(
        views=pl.len(), generic=(pl.col("noise") == "generic").fill_null(False).mean()
    ).filter(pl.col("views") >= MIN_PERSON_VIEWS)
    sessions = web.group_by("session_id").agg(
        "person_key", start=pl.col("ts").min(), end=pl.col("ts").max(),
        memories=pl.col("memory_key").n_unique(), intents=pl.col("intent").n_unique(),
        noisy=pl.col("noise").is_not_null().any(),
    ).with_columns(pl.col("person_key").list.first())
    gaps = sessions.sort("person_key", "start").with_columns(
        gap=(pl.col("start") - pl.col("end").shift().over("person_key")).dt.total_milliseconds()
    ).drop_nulls("gap")
    activity = records.filter(pl.concat_str("source", pl.lit("/"), "entity").is_in(EVENT_ENTITIES))
    last_day = activity["event_date"].max()
    window = activity.filter(pl.col("event_date") > pl.lit(last_day) - pl.duration(days=WINDOW_DAYS))
    per_person = window.group_by("person_key").len()
    memories = activity.filter(pl.col("memory_key").is_not_null()).group_by("memory_key").agg(
        purity=pl.col("persona").drop_nulls().mode().first().pipe(
            lambda majority: (pl.col("persona") == majority).sum() / pl.len()
        )
    )
    return {
        # web item views showing a bestseller, promotion or gift card
        "generic_view_share": _mean(views["noise"] == "generic"),
        # the same per person, median over people with at least 20 views
        "generic_view_share_median_person": float(generic_per_person["generic"].median()),
        # event records (web, social, IoT) showing another persona's content inside a session
        "off_persona_event_share": _mean(activity.filter(pl.col("memory_key").is_not_null())["noise"] == "off_persona"),
        # web sessions whose events belong to more than one planted intent memory (a switch, no pause)
        "switching_session_share": _mean(sessions["memories"] > 1),
        # web sessions with noise (generic or off-persona) or a switch: sessions that mix personas
        "mixed_session_share": _mean((sessions["intents"] > 1) | sessions["noisy"]),
        # gaps between one person's consecutive web sessions that are under 30 minutes
        "short_gap_share": _mean(gaps["gap"] < SHORT_GAP_MS),
        # people seen in the last 28 days (or the run) with at most 3 events there
        "light_user_share": _mean(per_person["len"] <= LIGHT_EVENTS),
        # categories with on-intent views from 2+ personas (each at least 10% of them), and those categories' views
        **_shared_category_shares(views.filter(pl.col("persona").is_not_null())),
        # on-intent social engagements with a post that other personas engage with too
        "ambiguous_post_share": _ambiguous_post_share(social.filter(pl.col("persona").is_not_null())),
        # distinct words of on-intent titles, searches and posts (seen 5+ times) all from one persona
        "single_persona_word_share": _single_persona_word_share(views, web, social),
        # memories whose events are not all of the memory's majority persona (noise or a switch)
        "impure_memory_share": _mean(memories["purity"] < 1.0),
        "mean_memory_purity": float(memories["purity"].mean()),
        # log-log slope of item views against rank within categories (median over categories)
        "zipf_slope": _median_zipf_slope(views),
    }


def clean_lines(home: Path, key: str, clean: pl.DataFrame) -> pl.DataFrame:
    """The clean lines of one entity (those the truth marks unbroken), parsed, with their truth columns."""
    home, spec = Path(home), SPECS[key]
    schema = pl.Struct({name: pl.List(pl.String) if name == "tags" else pl.String for name in spec.fields})
    frames = []
    for path in sorted((home / "landing" / key).glob(f"*.{spec.fmt}")):
        lines = pl.Series("line", path.read_bytes().decode("utf-8", errors="replace").split("\n")).to_frame()
        frames.append(lines.with_columns(landing_file=pl.lit(str(path.relative_to(home))),
                                         line_no=pl.int_range(1, pl.len() + 1, dtype=pl.Int64)))
    clean_lines = pl.concat(frames).join(clean, on=["landing_file", "line_no"])
    return clean_lines.with_columns(pl.col("line").str.json_decode(schema)).unnest("line").with_columns(
        ts=pl.col("ts").str.strptime(pl.Datetime("ms"), "%Y-%m-%dT%H:%M:%S%.3fZ")
    )


def _mean(mask: pl.Series) -> float:
    """The share of True, a missing value counting as False (a null noise kind is no noise)."""
    return float(mask.fill_null(False).mean()) if len(mask) else float("nan")


def _shared_category_shares(views: pl.DataFrame) -> dict[str, float]:
    shares = views.group_by("category", "persona").len().with_columns(
        share=pl.col("len") / pl.col("len").sum().over("category")
    )
    used_by = shares.filter(pl.col("share") >= MIN_CATEGORY_PERSONA_SHARE).group_by("category").len()
    shared = used_by.filter(pl.col("len") > 1)["category"]
    return {
        "shared_category_share": _mean(used_by["len"] > 1),
        "shared_category_view_share": _mean(views["category"].is_in(shared)),
    }


def _ambiguous_post_share(engagements: pl.DataFrame) -> float:
    personas_per_post = engagements.group_by("post_id").agg(personas=pl.col("persona").n_unique())
    return _mean(engagements.join(personas_per_post, on="post_id")["personas"] > 1)


def _single_persona_word_share(views: pl.DataFrame, web: pl.DataFrame, social: pl.DataFrame) -> float:
    texts = pl.concat([
        views.select("persona", text="title"),
        web.filter(pl.col("query").is_not_null()).select("persona", text="query"),
        social.select("persona", "text"),
    ]).filter(pl.col("persona").is_not_null())
    words = texts.select("persona", word=pl.col("text").str.to_lowercase().str.extract_all(WORD.pattern))
    words = words.explode("word")
    counts = words.drop_nulls().group_by("word").agg(occurrences=pl.len(), personas=pl.col("persona").n_unique())
    return _mean(counts.filter(pl.col("occurrences") >= MIN_WORD_COUNT)["personas"] == 1)


def _median_zipf_slope(views: pl.DataFrame) -> float:
    counts = views.group_by("category", "item_id").len()
    slopes = []
    for (_,), category in counts.group_by("category"):
        if category["len"].sum() < MIN_CATEGORY_VIEWS_FOR_ZIPF:
            continue
        frequency = np.sort(category["len"].to_numpy())[::-1]
        slopes.append(np.polyfit(np.log(np.arange(1, len(frequency) + 1)), np.log(frequency), 1)[0])
    return float(np.median(slopes))
