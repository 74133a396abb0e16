"""One simulated day: sessions of planted personas turned into web, social, IoT and CRM records.

Everything works on a whole day at once (numpy arrays, polars frames); the only loops run over
personas or over rounds of a redistribution, never over people or events. Every frame carries
the contract fields as text plus the TRUTH_COLUMNS that the landing writer keeps out of the files.
"""

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from .formats import MS_PER_DAY, fixed_point, hex_ids, iso_ms, numbered_ids
from .landing import SPECS, LandingSpec
from .population import REGIONS, Population, light_visit_events, mobile_phones
from .world import World

TRUTH_COLUMNS = ["_ts_ms", "_person", "_persona", "_memory", "_noise"]  # time, person, persona, memory key, noise
NOISE_KINDS = (None, "generic", "off_persona")  # what `_noise` codes: on-intent, generic item, another persona's
ON_INTENT, GENERIC, OFF_PERSONA = range(len(NOISE_KINDS))

HOUR_MS = 3_600_000
SLOTS_PER_DAY = 8
SLOT_MS = 3 * HOUR_MS
SESSION_START_WINDOW_MS = HOUR_MS  # sessions start in the first hour of their slot and last under an hour
MIN_SESSION_EVENTS, MAX_SESSION_EVENTS = 3, 12
MEAN_SESSION_EVENTS = (MIN_SESSION_EVENTS + MAX_SESSION_EVENTS) / 2
MAX_SESSIONS_PER_PERSON = SLOTS_PER_DAY
EVENT_GAP_MS = (10_000, 300_000)

# Realistic world only (the easy world draws none of these).
GENERIC_SHARE = 0.15  # of web and social events: bestsellers, promotions, gift cards, generic posts
OFF_PERSONA_SHARE = 0.14  # of web and social events: content of a persona the session is not about
SWITCH_SHARE = 0.4  # of long enough sessions of people with 2+ personas: the intent changes mid-session, no pause
MIN_SWITCH_EVENTS = 4  # each side of a switch has at least two events
FOLLOW_ON_SHARE = 0.35  # of a person's later sessions: they start soon after the previous one ends
FOLLOW_ON_GAP_MS = (60_000, 29 * 60_000)
NOBODY = np.array([], dtype=np.int64)

WEB, SOCIAL, IOT = 0, 1, 2
SOCIAL_SHARE, IOT_SHARE = 0.2, 0.1  # the rest is web; falls back to web without a handle or device
WEB_EVENT_TYPES = ("search", "page_view", "click", "add_to_cart")
WEB_EVENT_SHARES = (0.2, 0.45, 0.2, 0.15)
SEARCH, ADD_TO_CART = WEB_EVENT_TYPES.index("search"), WEB_EVENT_TYPES.index("add_to_cart")
LATER_LOGIN_PROBABILITY = 0.3
SOCIAL_ACTIONS = ("like", "share", "comment")
SOCIAL_ACTION_SHARES = (0.6, 0.2, 0.2)
COMMENT_OPENERS = (
    "Love this!",
    "So true",
    "Saving this for later",
    "This is so me",
    "Goals",
    "Need this in my life",
    "Great tip, thanks",
    "Couldn't agree more",
)

ORDER_PROBABILITY = 0.5
ORDER_DELAY_MS = (60_000, 180_000)
ORDER_QUANTITY_SHARES = (0.7, 0.2, 0.1)  # one, two or three units
TICKET_PROBABILITY = 0.02
TICKET_DELAY_MS = (60_000, 300_000)
TICKET_CHANNELS = ("email", "phone", "chat")
TICKET_BODIES = (  # (before, after) the subject; bodies never name a person or an address
    ("Hello, I am writing about this: ", ". Could you please look into it?"),
    ("Hi support team. Issue: ", ". The order was placed recently."),
    ("Reporting a problem: ", ". I would like a replacement or a refund."),
    ("Good afternoon. ", ". Please let me know the next steps."),
    ("Second message about this: ", ". Still waiting for an answer, thanks."),
)
READING_JITTER_DEGREES = 0.003
CUSTOMER_CHANGE_SHARE = 0.005


@dataclass(frozen=True)
class Day:
    index: int
    date: date
    start_ms: int

    @property
    def tag(self) -> str:
        return self.date.strftime("%Y%m%d")


@dataclass(frozen=True)
class Sessions:
    """A day's sessions in start order; a session is one true intent memory, or two if its intent switches.

    The events of session s from offset `switch_at[s]` on (its length when it does not switch) are
    about `second_persona[s]` and form memory `second_memory[s]` (an index into `memory_key`; the
    first memory of session s is memory s).
    """

    person: np.ndarray
    persona: np.ndarray
    start_ms: np.ndarray
    length: np.ndarray
    cookie: np.ndarray  # flat index into population.cookies
    ip: np.ndarray  # flat index into population.ips
    memory_key: pl.Series
    session_id: pl.Series
    switch_at: np.ndarray
    second_persona: np.ndarray  # -1 where the session does not switch
    second_memory: np.ndarray  # -1 where the session does not switch

    def __len__(self) -> int:
        return len(self.person)


@dataclass(frozen=True)
class Events:
    session: np.ndarray
    ts_ms: np.ndarray
    source: np.ndarray
    persona: np.ndarray  # the planted persona the event's memory is about
    memory: np.ndarray  # index into sessions.memory_key
    content: np.ndarray  # whose items, searches and posts it draws: persona, another one, or world.generic
    noise: np.ndarray  # ON_INTENT, GENERIC or OFF_PERSONA


def session_count(events: int) -> int:
    """How many sessions carry `events` events: the mean length decides, the 3..12 bounds must hold."""
    if events < MIN_SESSION_EVENTS:
        raise ValueError(f"events_per_day must be at least {MIN_SESSION_EVENTS}, got {events}")
    lower, upper = math.ceil(events / MAX_SESSION_EVENTS), events // MIN_SESSION_EVENTS
    return min(max(round(events / MEAN_SESSION_EVENTS), lower), upper)


def session_lengths(rng: np.random.Generator, events: int) -> np.ndarray:
    """Uniform 3..12 lengths, nudged one event at a time until they add up to exactly `events`."""
    lengths = rng.integers(MIN_SESSION_EVENTS, MAX_SESSION_EVENTS + 1, size=session_count(events))
    while (missing := events - int(lengths.sum())) != 0:
        room = lengths < MAX_SESSION_EVENTS if missing > 0 else lengths > MIN_SESSION_EVENTS
        candidates = np.flatnonzero(room)
        nudged = rng.choice(candidates, min(abs(missing), len(candidates)), replace=False)
        lengths[nudged] += np.sign(missing)
    return lengths


def sessions_per_person(rng: np.random.Generator, activity: np.ndarray, sessions: int) -> np.ndarray:
    """Spread sessions over people by activity, re-spreading whatever exceeds the per-person cap."""
    counts = np.zeros(len(activity), dtype=np.int64)
    remaining = sessions
    while remaining:
        rate = np.where(counts < MAX_SESSIONS_PER_PERSON, activity, 0.0)
        counts += rng.multinomial(remaining, rate / rate.sum())
        remaining = int(np.maximum(counts - MAX_SESSIONS_PER_PERSON, 0).sum())
        counts = np.minimum(counts, MAX_SESSIONS_PER_PERSON)
    return counts


def plan_sessions(
    rng: np.random.Generator, world: World, population: Population, day: Day, events: int, weights: np.ndarray
) -> Sessions:
    """Regular people's 3-12 event sessions by activity, light people's one short visit, one slot each."""
    realistic = world.realistic
    light_people, light_lengths = _light_visits(rng, population, day, events) if realistic else (NOBODY, NOBODY)
    lengths = session_lengths(rng, events - int(light_lengths.sum()))
    counts = sessions_per_person(rng, np.where(population.light_day >= 0, 0.0, population.activity), len(lengths))
    counts[light_people] += 1
    person = np.repeat(np.arange(population.size), counts)
    rank = np.arange(len(person)) - np.repeat(np.cumsum(counts) - counts, counts)
    active = np.flatnonzero(counts)
    slot_order = np.argsort(rng.random((len(active), SLOTS_PER_DAY)), axis=1)
    slot = slot_order[np.repeat(np.arange(len(active)), counts[active]), rank]
    start = day.start_ms + slot * SLOT_MS + rng.integers(0, SESSION_START_WINDOW_MS, size=len(person))
    persona = _draw_personas(rng, weights[person])
    order = np.lexsort((person, start))
    person, persona, start = person[order], persona[order], start[order]
    if realistic:  # light visits are matched to their people; the easy world keeps its i.i.d. lengths as drawn
        is_light = population.light_day[person] >= 0
        visit_length = np.zeros(population.size, dtype=np.int64)
        visit_length[light_people] = light_lengths
        regular_lengths, lengths = lengths, visit_length[person]
        lengths[~is_light] = regular_lengths
    switch_at, second_persona = (
        _intent_switches(rng, weights, person, persona, lengths) if realistic else (lengths, np.full(len(person), -1))
    )
    switched = second_persona >= 0
    second_memory = np.where(switched, len(person) + np.cumsum(switched) - 1, -1)
    return Sessions(
        person=person,
        persona=persona,
        start_ms=start,
        length=lengths,
        cookie=population.cookies.draw(rng, person),
        ip=population.ips.draw(rng, person),
        memory_key=numbered_ids(f"m-{day.tag}-", np.arange(1, len(person) + int(switched.sum()) + 1), 6),
        session_id=hex_ids("ws-", rng.integers(0, 2**63, size=len(person)), 16),
        switch_at=switch_at,
        second_persona=second_persona,
        second_memory=second_memory,
    )


def _light_visits(
    rng: np.random.Generator, population: Population, day: Day, events: int
) -> tuple[np.ndarray, np.ndarray]:
    """Light people visiting today and their 1-3 events; they never take more than half the day's events."""
    people = np.flatnonzero(population.light_day == day.index)
    lengths = light_visit_events(rng, len(people))
    kept = np.cumsum(lengths) <= (events - MIN_SESSION_EVENTS) // 2
    return people[kept], lengths[kept]


def _intent_switches(
    rng: np.random.Generator, weights: np.ndarray, person: np.ndarray, persona: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A SWITCH_SHARE of sessions long enough, of people holding two personas or more, move on to another intent.

    The switch comes after 2..length-2 events, to another of the person's own personas by weight, so
    nobody shows a persona they do not hold. Returns (switch offset, second persona or -1).
    """
    others = weights[person]
    others[np.arange(len(person)), persona] = 0.0
    switched = (lengths >= MIN_SWITCH_EVENTS) & (others.sum(axis=1) > 0.0) & (rng.random(len(person)) < SWITCH_SHARE)
    switch_at = np.where(switched, rng.integers(2, np.maximum(lengths - 1, 3)), lengths)
    others[~switched] = 1.0  # any valid row: their draw is discarded
    return switch_at, np.where(switched, _draw_personas(rng, others), -1)


def _draw_personas(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One persona per row of `weights`; personas of weight 0 are never drawn."""
    cumulative = np.cumsum(weights, axis=1)
    threshold = rng.random(len(weights)) * cumulative[:, -1]
    return (cumulative > threshold[:, None]).argmax(axis=1)


def place_events(
    rng: np.random.Generator, world: World, population: Population, sessions: Sessions, present: int
) -> Events:
    """Events 10 s to 5 min apart from the session start; each picks web, social or IoT.

    In the realistic world some sessions follow the person's previous one within 30 minutes, and
    web and social events may show generic or another persona's content (see `_noise`), of the
    first `present` personas (an emerging persona's content is not shown before the drift day).
    """
    session = np.repeat(np.arange(len(sessions)), sessions.length)
    first = np.cumsum(sessions.length) - sessions.length
    gaps = rng.integers(EVENT_GAP_MS[0], EVENT_GAP_MS[1] + 1, size=len(session))
    gaps[first] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first], sessions.length)
    start_ms = sessions.start_ms
    if world.realistic:
        start_ms = _follow_on_starts(rng, sessions, duration_ms=elapsed[first + sessions.length - 1])
    second = np.arange(len(session)) - first[session] >= sessions.switch_at[session]
    person = sessions.person[session]
    persona = np.where(second, sessions.second_persona[session], sessions.persona[session])
    draw = rng.random(len(session))
    social = (draw < SOCIAL_SHARE) & population.has_handle[person]
    iot = (draw >= SOCIAL_SHARE) & (draw < SOCIAL_SHARE + IOT_SHARE) & (population.device_of[person, persona] >= 0)
    source = np.where(social, SOCIAL, np.where(iot, IOT, WEB))
    content, noise = persona, np.zeros(len(session), dtype=np.int64)
    if world.realistic:
        content, noise = _noise(rng, world, persona, source, present)
    return Events(
        session=session,
        ts_ms=start_ms[session] + elapsed,
        source=source,
        persona=persona,
        memory=np.where(second, sessions.second_memory[session], session),
        content=content,
        noise=noise,
    )


def _follow_on_starts(rng: np.random.Generator, sessions: Sessions, duration_ms: np.ndarray) -> np.ndarray:
    """A FOLLOW_ON_SHARE of people's later sessions start 1-29 minutes after their previous session ends.

    Only sessions whose previous one stays put move, so every move is one step; a moved session
    starts earlier than planned, so it never reaches the next one (sessions are a 3-hour slot apart).
    """
    by_person = np.lexsort((sessions.start_ms, sessions.person))
    previous = np.full(len(sessions), -1)
    same_person = sessions.person[by_person[1:]] == sessions.person[by_person[:-1]]
    previous[by_person[1:][same_person]] = by_person[:-1][same_person]
    chosen = (previous >= 0) & (rng.random(len(sessions)) < FOLLOW_ON_SHARE)
    moves = chosen & ~chosen[np.maximum(previous, 0)]
    gap = rng.integers(FOLLOW_ON_GAP_MS[0], FOLLOW_ON_GAP_MS[1] + 1, size=len(sessions))
    previous_end = sessions.start_ms[previous] + duration_ms[previous]
    return np.where(moves, previous_end + gap, sessions.start_ms)


def _noise(
    rng: np.random.Generator, world: World, persona: np.ndarray, source: np.ndarray, persona_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Whose content each event shows: web and social events are GENERIC or OFF_PERSONA at their shares,
    the other persona one of the first `persona_count` (those present on the day)."""
    draw = rng.random(len(persona))
    noise = np.select(
        [draw < GENERIC_SHARE, draw < GENERIC_SHARE + OFF_PERSONA_SHARE], [GENERIC, OFF_PERSONA], ON_INTENT
    )
    noise[source == IOT] = ON_INTENT
    other = (persona + rng.integers(1, persona_count, size=len(persona))) % persona_count
    content = np.select([noise == GENERIC, noise == OFF_PERSONA], [world.generic, other], persona)
    return content, noise


def logged_in_sessions(
    rng: np.random.Generator,
    population: Population,
    sessions: Sessions,
    web_session: np.ndarray,
    cookie_seen: np.ndarray,
) -> np.ndarray:
    """A customer's cookie logs in on the first session it is ever seen in, later with LATER_LOGIN_PROBABILITY.

    Updates `cookie_seen` (carried across days) in place.
    """
    with_web = np.flatnonzero(np.bincount(web_session, minlength=len(sessions)) > 0)
    cookie = sessions.cookie[with_web]
    first_today = np.zeros(len(with_web), dtype=bool)
    first_today[np.unique(cookie, return_index=True)[1]] = True
    first_ever = first_today & ~cookie_seen[cookie]
    cookie_seen[cookie] = True
    later = rng.random(len(with_web)) < LATER_LOGIN_PROBABILITY
    logged_in = np.zeros(len(sessions), dtype=bool)
    logged_in[with_web] = population.is_customer[sessions.person[with_web]] & (first_ever | later)
    return logged_in


def _truth_columns(
    ts_ms: np.ndarray, person: np.ndarray, persona: np.ndarray, memory: pl.Series, noise: np.ndarray | int = ON_INTENT
) -> dict:
    noise = np.broadcast_to(noise, len(person)).astype(np.int64)
    return {
        "_ts_ms": ts_ms.astype(np.int64), "_person": person, "_persona": persona, "_memory": memory, "_noise": noise
    }


def _draw_items(rng: np.random.Generator, world: World, persona: np.ndarray) -> np.ndarray:
    """Rows of `world.items` from each content's pool (a persona's or the generic one), popular items more often."""
    item = np.empty(len(persona), dtype=np.int64)
    for persona_index, (pool, weights) in enumerate(zip(world.item_pools, world.item_weights, strict=True)):
        rows = np.flatnonzero(persona == persona_index)
        item[rows] = rng.choice(pool, size=len(rows), p=weights)
    return item


def _event_truth(sessions: Sessions, events: Events, rows: np.ndarray) -> dict:
    """The truth columns of the events at `rows`: their person, planted persona, memory and noise kind."""
    person, memory = sessions.person[events.session[rows]], sessions.memory_key.gather(events.memory[rows])
    return _truth_columns(events.ts_ms[rows], person, events.persona[rows], memory, events.noise[rows])


def _in_file_order(frame: pl.DataFrame, spec: LandingSpec, day: Day) -> pl.DataFrame:
    """Sort by time, number the day's records if the entity has generated ids, keep contract + truth columns."""
    ordered = frame.sort("_ts_ms", maintain_order=True)
    if spec.id_prefix is not None:
        record_id = numbered_ids(f"{spec.id_prefix}-{day.tag}-", np.arange(1, ordered.height + 1), 7)
        ordered = ordered.with_columns(record_id.alias(spec.id_field))
    return ordered.select(list(spec.fields) + TRUTH_COLUMNS)


def web_events(
    rng: np.random.Generator,
    world: World,
    population: Population,
    day: Day,
    sessions: Sessions,
    events: Events,
    cookie_seen: np.ndarray,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The web clickstream, plus the customers' add-to-cart events that may turn into orders."""
    rows = np.flatnonzero(events.source == WEB)
    session, content = events.session[rows], events.content[rows]
    person = sessions.person[session]
    event_type = rng.choice(len(WEB_EVENT_TYPES), size=len(rows), p=WEB_EVENT_SHARES)
    logged_in = logged_in_sessions(rng, population, sessions, session, cookie_seen)[session]
    item = world.items.gather(_draw_items(rng, world, content))
    query = world.queries.draw(rng, content)
    drawn = pl.DataFrame(
        {
            "event_type": pl.Series(WEB_EVENT_TYPES).gather(event_type),
            "is_search": event_type == SEARCH,
            "session_id": sessions.session_id.gather(session),
            "cookie_id": population.cookies.ids.gather(sessions.cookie[session]),
            "customer_id": population.people["customer_id"].gather(person),
            "is_cart": (event_type == ADD_TO_CART) & population.is_customer[person],
            "logged_in": logged_in,
            "item_id": item["item_id"],
            "category": item["category"],
            "title": item["title"],
            "item_url": item["url"],
            "price_cents": item["price_cents"],
            "query": world.queries.values.gather(query),
            "query_url": world.query_urls.gather(query),
            "ip": population.ips.ids.gather(sessions.ip[session]),
            "user_agent": population.people["user_agent"].gather(person),
            **_event_truth(sessions, events, rows),
        }
    )
    search, browse = pl.col("is_search"), ~pl.col("is_search")
    frame = drawn.with_columns(
        ts=iso_ms(pl.col("_ts_ms")),
        customer_id=pl.when(pl.col("logged_in")).then(pl.col("customer_id")),
        url=pl.when(search).then(pl.col("query_url")).otherwise(pl.col("item_url")),
        item_id=pl.when(browse).then(pl.col("item_id")),
        category=pl.when(browse).then(pl.col("category")),
        title=pl.when(browse).then(pl.col("title")),
        query=pl.when(search).then(pl.col("query")),
    )
    return _in_file_order(frame, SPECS["web/events"], day), drawn.filter("is_cart")


def social_engagements(
    rng: np.random.Generator, world: World, population: Population, day: Day, sessions: Sessions, events: Events
) -> pl.DataFrame:
    rows = np.flatnonzero(events.source == SOCIAL)
    person = sessions.person[events.session[rows]]
    post = world.posts.gather(world.post_texts.draw(rng, events.content[rows]))
    action = rng.choice(len(SOCIAL_ACTIONS), size=len(rows), p=SOCIAL_ACTION_SHARES)
    drawn = pl.DataFrame(
        {
            "handle": population.people["handle"].gather(person),
            "action": pl.Series(SOCIAL_ACTIONS).gather(action),
            "post_id": post["post_id"],
            "post_text": post["text"],
            "tags": post["tags"],
            "opener": pl.Series(COMMENT_OPENERS).gather(rng.integers(len(COMMENT_OPENERS), size=len(rows))),
            **_event_truth(sessions, events, rows),
        }
    )
    comment = pl.concat_str(pl.col("opener"), pl.lit(" #"), pl.col("tags").list.first())
    frame = drawn.with_columns(
        ts=iso_ms(pl.col("_ts_ms")),
        text=pl.when(pl.col("action") == "comment").then(comment).otherwise(pl.col("post_text")),
    )
    return _in_file_order(frame, SPECS["social/engagements"], day)


def iot_readings(
    rng: np.random.Generator, world: World, population: Population, day: Day, sessions: Sessions, events: Events
) -> pl.DataFrame:
    """Readings from the device that serves the session's persona, near the owner's home."""
    rows = np.flatnonzero(events.source == IOT)
    person, persona = sessions.person[events.session[rows]], events.persona[rows]
    device = population.devices.gather(population.device_of[person, persona])
    value = world.signal_means[persona] + world.signal_spreads[persona] * rng.standard_normal(len(rows))
    position = population.home[person] + rng.normal(0.0, READING_JITTER_DEGREES, (len(rows), 2))
    frame = pl.DataFrame(
        {
            "device_id": device["device_id"],
            "device_type": device["device_type"],
            "signal": pl.Series(world.signals[persona].astype(str)),
            "value_tenths": np.round(np.maximum(value, 0.0) * 10).astype(np.int64),
            "context": world.contexts.values.gather(world.contexts.draw(rng, persona)),
            "lat_micro": np.round(position[:, 0] * 1e6).astype(np.int64),
            "lon_micro": np.round(position[:, 1] * 1e6).astype(np.int64),
            **_event_truth(sessions, events, rows),
        }
    ).with_columns(
        ts=iso_ms(pl.col("_ts_ms")),
        value=fixed_point(pl.col("value_tenths"), 1),
        lat=fixed_point(pl.col("lat_micro"), 6),
        lon=fixed_point(pl.col("lon_micro"), 6),
    )
    return _in_file_order(frame, SPECS["iot/readings"], day)


def crm_orders(rng: np.random.Generator, day: Day, carts: pl.DataFrame) -> pl.DataFrame:
    """Half of the customers' add-to-carts are bought 1-3 min later: same item, 1-3 units, in EUR."""
    bought = carts.filter(pl.Series(rng.random(carts.height) < ORDER_PROBABILITY))
    quantity = rng.choice(len(ORDER_QUANTITY_SHARES), size=bought.height, p=ORDER_QUANTITY_SHARES) + 1
    delay = rng.integers(ORDER_DELAY_MS[0], ORDER_DELAY_MS[1] + 1, size=bought.height)
    frame = bought.with_columns(
        _ts_ms=pl.col("_ts_ms") + pl.Series(delay),
        quantity=pl.Series(quantity),
    ).with_columns(
        ts=iso_ms(pl.col("_ts_ms")),
        amount=fixed_point(pl.col("price_cents") * pl.col("quantity"), 2),
        quantity=pl.col("quantity").cast(pl.String),
        currency=pl.lit("EUR"),
    )
    return _in_file_order(frame, SPECS["crm/orders"], day)


def crm_tickets(
    rng: np.random.Generator, world: World, population: Population, day: Day, sessions: Sessions, events: Events
) -> pl.DataFrame:
    """A few customer sessions end in a support ticket about one of the persona's usual problems."""
    last_event_ms = events.ts_ms[np.cumsum(sessions.length) - 1]
    chosen = np.flatnonzero(population.is_customer[sessions.person] & (rng.random(len(sessions)) < TICKET_PROBABILITY))
    person = sessions.person[chosen]
    switched = sessions.second_persona[chosen] >= 0  # the ticket follows the session's last intent
    persona = np.where(switched, sessions.second_persona[chosen], sessions.persona[chosen])
    memory = np.where(switched, sessions.second_memory[chosen], chosen)
    delay = rng.integers(TICKET_DELAY_MS[0], TICKET_DELAY_MS[1] + 1, size=len(chosen))
    template = rng.integers(len(TICKET_BODIES), size=len(chosen))
    drawn = pl.DataFrame(
        {
            "customer_id": population.people["customer_id"].gather(person),
            "channel": pl.Series(TICKET_CHANNELS).gather(rng.integers(len(TICKET_CHANNELS), size=len(chosen))),
            "subject": world.ticket_subjects.values.gather(world.ticket_subjects.draw(rng, persona)),
            "before": pl.Series([before for before, _ in TICKET_BODIES]).gather(template),
            "after": pl.Series([after for _, after in TICKET_BODIES]).gather(template),
            **_truth_columns(last_event_ms[chosen] + delay, person, persona, sessions.memory_key.gather(memory)),
        }
    )
    subject = pl.col("subject")
    frame = drawn.with_columns(
        ts=iso_ms(pl.col("_ts_ms")),
        body=pl.concat_str(
            pl.col("before"), subject.str.head(1).str.to_lowercase(), subject.str.slice(1), pl.col("after")
        ),
    )
    return _in_file_order(frame, SPECS["crm/tickets"], day)


class CustomerBook:
    """The CRM's current view of every customer: the first day exports all, later days only the changes."""

    def __init__(self, population: Population) -> None:
        self.rows = (
            population.people.with_columns(_person=pl.int_range(pl.len(), dtype=pl.Int64))
            .filter(pl.Series(population.is_customer))
            .rename({"handle": "social_handle"})
        )

    def export(self, rng: np.random.Generator, day: Day) -> pl.DataFrame:
        changed = self.rows if day.index == 0 else self._apply_changes(rng)
        updated = day.start_ms + rng.integers(0, MS_PER_DAY, size=changed.height)
        frame = changed.with_columns(
            _ts_ms=pl.Series(updated, dtype=pl.Int64),
            _persona=pl.lit(None, pl.Int64),
            _memory=pl.lit(None, pl.String),
            _noise=pl.lit(ON_INTENT, pl.Int64),
        ).with_columns(updated_at=iso_ms(pl.col("_ts_ms")))
        return _in_file_order(frame, SPECS["crm/customers"], day)

    def _apply_changes(self, rng: np.random.Generator) -> pl.DataFrame:
        """About CUSTOMER_CHANGE_SHARE of customers get a new phone number or move to another region."""
        count = rng.binomial(self.rows.height, CUSTOMER_CHANGE_SHARE)
        picked = np.sort(rng.choice(self.rows.height, count, replace=False))
        new_phone = rng.random(count) < 0.5
        callers, movers = picked[new_phone], picked[~new_phone]
        region = self.rows["region"].gather(movers).replace_strict(REGIONS, range(len(REGIONS))).to_numpy()
        moved_to = (region + rng.integers(1, len(REGIONS), size=len(movers))) % len(REGIONS)
        self.rows = self.rows.with_columns(
            phone=self.rows["phone"].clone().scatter(callers, mobile_phones(rng, len(callers))),
            region=self.rows["region"].clone().scatter(movers, pl.Series(REGIONS).gather(moved_to)),
        )
        return self.rows[picked]


def device_registrations(
    rng: np.random.Generator, population: Population, days: list[Day], first_reading_ms: np.ndarray
) -> list[pl.DataFrame]:
    """Per day, the devices registered that day: the day before their first reading, else the first day.

    A device first read on the first day is registered earlier that same day; one never read
    is registered on the first day.
    """
    first_start = days[0].start_ms
    first_day = np.where(first_reading_ms >= 0, (first_reading_ms - first_start) // MS_PER_DAY, -1)
    registration_day = np.maximum(first_day - 1, 0)
    day_start = first_start + registration_day * MS_PER_DAY
    window = np.where(first_day == 0, first_reading_ms - day_start, MS_PER_DAY)
    registered_ms = day_start + np.floor(rng.random(len(window)) * window).astype(np.int64)
    devices = population.devices.with_columns(
        customer_id=population.people["customer_id"].gather(population.devices["person"]),
        registration_day=registration_day,
        _ts_ms=registered_ms,
        _person=pl.col("person"),
        _persona=pl.col("persona"),
        _memory=pl.lit(None, pl.String),
        _noise=pl.lit(ON_INTENT, pl.Int64),
    ).with_columns(registered_at=iso_ms(pl.col("_ts_ms")))
    return [
        _in_file_order(devices.filter(pl.col("registration_day") == day.index), SPECS["iot/devices"], day)
        for day in days
    ]


def simulate_day(
    rng: np.random.Generator,
    world: World,
    population: Population,
    day: Day,
    events_per_day: int,
    weights: np.ndarray,
    cookie_seen: np.ndarray,
    customers: CustomerBook,
    present: int,
) -> dict[str, pl.DataFrame]:
    """All records of one day keyed `source/entity` (device registrations are decided after the last day);
    the first `present` personas exist on the day."""
    sessions = plan_sessions(rng, world, population, day, events_per_day, weights)
    events = place_events(rng, world, population, sessions, present)
    web, carts = web_events(rng, world, population, day, sessions, events, cookie_seen)
    return {
        "web/events": web,
        "social/engagements": social_engagements(rng, world, population, day, sessions, events),
        "crm/customers": customers.export(rng, day),
        "crm/orders": crm_orders(rng, day, carts),
        "crm/tickets": crm_tickets(rng, world, population, day, sessions, events),
        "iot/readings": iot_readings(rng, world, population, day, sessions, events),
    }
