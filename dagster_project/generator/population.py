"""The planted population: who exists, which identifiers they use and which personas drive them."""

import unicodedata
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from .formats import numbered_ids, unique_hex_ids
from .world import World

REGIONS = ("north", "south", "east", "west", "central")
REGION_CENTRES = np.array([(53.55, 9.99), (48.14, 11.58), (52.52, 13.40), (51.23, 6.78), (50.11, 8.68)])
HOME_SPREAD_DEGREES = 0.25
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_BAND_SHARES = (0.14, 0.26, 0.24, 0.19, 0.17)
CUSTOMER_SHARE = 0.9
HANDLE_SHARE = 0.7  # of customers
PERSONA_COUNT_SHARES = (0.35, 0.40, 0.25)  # one, two or three planted personas
MAX_PERSONAS = len(PERSONA_COUNT_SHARES)
MIN_WEIGHT = 0.1
COOKIE_COUNT_SHARES = (0.5, 0.3, 0.2)  # a customer's one, two or three browsers
DEVICE_COUNT_SHARES = (0.45, 0.40, 0.15)  # a customer's zero, one or two devices
IP_COUNT_SHARES = (0.6, 0.4)  # one or two IPs
ACTIVITY_SHAPE = 0.5  # gamma shape: most people are seen rarely, a few very often
PERSONA_PREVALENCE_CONCENTRATION = 8.0  # Dirichlet: personas differ in size, none is negligible
DRIFT_WEIGHT = 0.5
EMERGING_TAKE_UP = 0.5  # of the drifting people, when the world has an emerging persona: they take that one up
LIGHT_SHARE = 0.45  # realistic world: people who visit once, with 1-3 events, on one day of LIGHT_SPAN_DAYS
LIGHT_SPAN_DAYS = 28  # a light visit falls on a uniform day of max(days, 28): many light people never show up
LIGHT_EVENT_SHARES = (0.45, 0.35, 0.2)  # one, two or three events in that visit

FIRST_NAMES = (
    "Anna", "Lukas", "Sofia", "Jonas", "Emma", "Noah", "Mia", "Elias", "Lena", "Felix",
    "Clara", "Paul", "Hannah", "Leon", "Marie", "Finn", "Laura", "Ben", "Julia", "Max",
    "Sara", "David", "Nina", "Tom", "Lea", "Jan", "Amelie", "Moritz", "Zoë", "Oskar",
    "Aisha", "Mehmet", "Fatma", "Yusuf", "Olga", "Piotr", "Agnieszka", "Luca", "Giulia", "Mateo",
    "Lucía", "Chloé", "Hugo", "Inès", "Liam", "Olivia", "Ethan", "Grace", "Kenji", "Mei",
    "Priya", "Arjun", "Fatima", "Omar", "Ingrid", "Sven", "Astrid", "Björn", "Eva", "Karl",
)
LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger",
    "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Herrmann", "Walter", "Kaiser", "Fuchs",
    "Yılmaz", "Kaya", "Nowak", "Kowalski", "Rossi", "Bianchi", "García", "Martínez", "Dubois", "Laurent",
    "Smith", "Jones", "O'Brien", "Murphy", "Tanaka", "Chen", "Nguyen", "Sharma", "Patel", "Haddad",
    "Andersson", "Johansson", "Nielsen", "Jansen", "de Vries", "Novák", "Horváth", "Popescu", "Ivanova", "Silva",
)
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "inbox.example")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.6668.100 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.6668.81 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0",
)
PUBLIC_FIRST_OCTETS = (  # public, non-reserved /8 blocks, so IPs look like real residential addresses
    31, 37, 46, 62, 77, 78, 79, 80, 81, 82, 84, 85, 87, 88, 89, 91,
    93, 94, 95, 109, 145, 151, 176, 178, 185, 188, 193, 194, 195, 212, 213, 217,
)


@dataclass(frozen=True)
class Owned:
    """Identifiers owned by people, grouped by owner: person p owns `ids[offsets[p]:offsets[p] + counts[p]]`."""

    ids: pl.Series
    owner: np.ndarray
    offsets: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, ids: pl.Series, counts: np.ndarray) -> "Owned":
        owner = np.repeat(np.arange(len(counts)), counts)
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        return cls(ids=ids, owner=owner, offsets=offsets, counts=counts)

    def draw(self, rng: np.random.Generator, person: np.ndarray) -> np.ndarray:
        """One uniformly chosen flat index into `ids` per entry of `person` (each must own at least one)."""
        return self.offsets[person] + (rng.random(len(person)) * self.counts[person]).astype(np.int64)


@dataclass(frozen=True)
class Population:
    people: pl.DataFrame  # one row per person, truth columns of people.parquet except ips
    is_customer: np.ndarray
    has_handle: np.ndarray
    activity: np.ndarray  # relative session rate
    home: np.ndarray  # (people, 2): latitude, longitude
    cookies: Owned
    ips: Owned
    devices: pl.DataFrame  # device_id, person, persona, device_type
    device_of: np.ndarray  # (people, personas): row in `devices` or -1
    slot_persona: np.ndarray  # (people, MAX_PERSONAS): persona index or -1
    slot_weight: np.ndarray  # (people, MAX_PERSONAS): 0 where unused
    drifted: np.ndarray
    new_persona: np.ndarray  # persona taken up at the drift, -1 if none
    weights_before: np.ndarray  # (people, personas)
    weights_after: np.ndarray  # (people, personas), from the drift day on
    light_day: np.ndarray  # the day index of a light person's only visit; -1 for everyone else

    @property
    def size(self) -> int:
        return self.people.height


def build_population(
    rng: np.random.Generator,
    drift_rng: np.random.Generator,
    world: World,
    size: int,
    drift_share: float,
    underrepresent: tuple[str, str] | None = None,
) -> Population:
    """Everyone with identifiers and planted personas; the drift draws from its own stream so it shifts nothing else.

    `underrepresent=(region, persona key)` plants a fairness problem: nobody of that region
    holds that persona (see `_underrepresented`); its draws come from a child stream, so
    everything else is generated exactly as without it. A world with an emerging persona
    (`world.emerging`) plants it on nobody; at the drift an EMERGING_TAKE_UP of the drifting
    people take it up (drawn from a child stream of the drift: all else stays as without it).
    """
    persona_count, established = len(world.personas), world.established
    slot_persona, slot_weight = _planted_personas(rng, size, established)
    is_customer, customer_number = _customers(rng, size)
    has_handle = is_customer & (rng.random(size) < HANDLE_SHARE)
    region = rng.integers(len(REGIONS), size=size)
    barred = np.zeros((size, persona_count), dtype=bool)
    if underrepresent is not None:
        barred = _barred_persona(region, world, *underrepresent)
        slot_persona = _underrepresented(rng.spawn(1)[0], slot_persona, barred[:, :established])
    people = _people_frame(rng, region, is_customer, customer_number, has_handle)
    cookie_counts = np.where(is_customer, rng.choice(len(COOKIE_COUNT_SHARES), size, p=COOKIE_COUNT_SHARES) + 1, 1)
    ip_counts = rng.choice(len(IP_COUNT_SHARES), size, p=IP_COUNT_SHARES) + 1
    home = REGION_CENTRES[region] + rng.normal(0.0, HOME_SPREAD_DEGREES, (size, 2))
    devices, device_of = _devices(rng, world, is_customer, slot_persona)
    drifted, new_persona = _drift(drift_rng, slot_persona, established, drift_share)
    if world.emerging is not None:
        new_persona = _take_up_emerging(drift_rng.spawn(1)[0], drifted, new_persona, world.emerging)
    drifted &= ~barred[np.arange(size), new_persona]  # nobody takes a barred persona up at the drift either
    new_persona = np.where(drifted, new_persona, -1)
    weights_before = _weight_matrix(slot_persona, slot_weight, persona_count)
    weights_after = weights_before.copy()
    weights_after[drifted] *= 1.0 - DRIFT_WEIGHT
    weights_after[np.flatnonzero(drifted), new_persona[drifted]] = DRIFT_WEIGHT
    return Population(
        people=people,
        is_customer=is_customer,
        has_handle=has_handle,
        activity=rng.gamma(ACTIVITY_SHAPE, 1.0, size),
        home=home,
        cookies=Owned.of(unique_hex_ids(rng, "ck-", int(cookie_counts.sum()), 12), cookie_counts),
        ips=Owned.of(_public_ips(rng, int(ip_counts.sum())), ip_counts),
        devices=devices,
        device_of=device_of,
        slot_persona=slot_persona,
        slot_weight=slot_weight,
        drifted=drifted,
        new_persona=new_persona,
        weights_before=weights_before,
        weights_after=weights_after,
        light_day=np.full(size, -1, dtype=np.int64),
    )


def with_light_users(rng: np.random.Generator, population: Population, days: int) -> Population:
    """The long tail: a LIGHT_SHARE of people visit once, on a uniform day of max(days, LIGHT_SPAN_DAYS).

    Their visit has 1-3 events (`light_visit_events`); the rest of the traffic goes to everyone else.
    """
    light = np.zeros(population.size, dtype=bool)
    light[rng.choice(population.size, round(LIGHT_SHARE * population.size), replace=False)] = True
    visit_day = rng.integers(0, max(days, LIGHT_SPAN_DAYS), size=population.size)
    return replace(population, light_day=np.where(light, visit_day, -1))


def light_visit_events(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.choice(len(LIGHT_EVENT_SHARES), count, p=LIGHT_EVENT_SHARES) + 1


def _planted_personas(rng: np.random.Generator, size: int, persona_count: int) -> tuple[np.ndarray, np.ndarray]:
    """One to three distinct personas per person (Gumbel top-k on prevalence), Dirichlet weights >= MIN_WEIGHT."""
    prevalence = rng.dirichlet(np.full(persona_count, PERSONA_PREVALENCE_CONCENTRATION))
    scores = np.log(prevalence) + rng.gumbel(size=(size, persona_count))
    ranked = np.argsort(-scores, axis=1)[:, :MAX_PERSONAS]
    held = rng.choice(MAX_PERSONAS, size, p=PERSONA_COUNT_SHARES) + 1
    used = np.arange(MAX_PERSONAS) < held[:, None]
    raw = np.where(used, rng.exponential(size=(size, MAX_PERSONAS)), 0.0)
    spare = 1.0 - MIN_WEIGHT * held
    weight = np.where(used, MIN_WEIGHT + spare[:, None] * raw / raw.sum(axis=1, keepdims=True), 0.0)
    return np.where(used, ranked, -1), weight


def _barred_persona(region: np.ndarray, world: World, region_name: str, persona_key: str) -> np.ndarray:
    """(people, personas): True where a person of `region_name` may not hold `persona_key`."""
    if region_name not in REGIONS or persona_key not in world.persona_keys:
        raise ValueError(f"underrepresent needs a region of {REGIONS} and a persona of {tuple(world.persona_keys)}, "
                         f"got {region_name!r}, {persona_key!r}")
    barred = np.zeros((len(region), len(world.personas)), dtype=bool)
    barred[region == REGIONS.index(region_name), world.persona_keys.index(persona_key)] = True
    return barred


def _underrepresented(rng: np.random.Generator, slot_persona: np.ndarray, barred: np.ndarray) -> np.ndarray:
    """Each barred persona a person holds is swapped for a random persona they do not hold yet, weight unchanged."""
    scores = rng.gumbel(size=barred.shape)
    rows, slots = np.nonzero(slot_persona >= 0)
    scores[rows, slot_persona[rows, slots]] = -np.inf
    replacement = scores.argmax(axis=1)
    held = np.where(slot_persona >= 0, slot_persona, 0)
    swapped = (slot_persona >= 0) & np.take_along_axis(barred, held, axis=1)
    return np.where(swapped, replacement[:, None], slot_persona)


def _customers(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A random CUSTOMER_SHARE of people, numbered in random order so customer ids say nothing about person keys."""
    order = rng.permutation(size)
    customer_count = round(CUSTOMER_SHARE * size)
    customer_number = np.zeros(size, dtype=np.int64)
    customer_number[order[:customer_count]] = np.arange(1, customer_count + 1)
    return customer_number > 0, customer_number


def _ascii_lower(names: tuple[str, ...]) -> list[str]:
    return [
        unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower().replace("'", "").replace(" ", "")
        for name in names
    ]


def _people_frame(
    rng: np.random.Generator,
    region: np.ndarray,
    is_customer: np.ndarray,
    customer_number: np.ndarray,
    has_handle: np.ndarray,
) -> pl.DataFrame:
    size = len(region)
    first = rng.integers(len(FIRST_NAMES), size=size)
    last = rng.integers(len(LAST_NAMES), size=size)
    draws = pl.DataFrame(
        {
            "first_name": pl.Series(FIRST_NAMES).gather(first),
            "last_name": pl.Series(LAST_NAMES).gather(last),
            "first_ascii": pl.Series(_ascii_lower(FIRST_NAMES)).gather(first),
            "last_ascii": pl.Series(_ascii_lower(LAST_NAMES)).gather(last),
            "number": customer_number.astype(str),
            "email_style": rng.integers(3, size=size),
            "domain": pl.Series(EMAIL_DOMAINS).gather(rng.integers(len(EMAIL_DOMAINS), size=size)),
            "phone": mobile_phones(rng, size),
            "is_customer": is_customer,
            "has_handle": has_handle,
        }
    )
    first_ascii, last_ascii, number = pl.col("first_ascii"), pl.col("last_ascii"), pl.col("number")
    local_part = (
        pl.when(pl.col("email_style") == 0)
        .then(pl.concat_str(first_ascii, pl.lit("."), last_ascii, number))
        .when(pl.col("email_style") == 1)
        .then(pl.concat_str(first_ascii.str.head(1), last_ascii, number))
        .otherwise(pl.concat_str(first_ascii, pl.lit("_"), last_ascii, number))
    )
    customer_only = {
        "customer_id": pl.lit(numbered_ids("C", customer_number, 6)),
        "email": pl.concat_str(local_part, pl.lit("@"), pl.col("domain")),
        "phone": pl.col("phone"),
        "first_name": pl.col("first_name"),
        "last_name": pl.col("last_name"),
    }
    return draws.select(
        person_key=pl.lit(numbered_ids("P", np.arange(1, size + 1), 6)),
        **{name: pl.when(pl.col("is_customer")).then(value) for name, value in customer_only.items()},
        region=pl.lit(pl.Series(REGIONS).gather(region)),
        age_band=pl.lit(pl.Series(AGE_BANDS).gather(rng.choice(len(AGE_BANDS), size, p=AGE_BAND_SHARES))),
        handle=pl.when(pl.col("has_handle")).then(
            pl.concat_str(pl.lit("@"), first_ascii, pl.lit("_"), last_ascii, number)
        ),
        user_agent=pl.lit(pl.Series(USER_AGENTS).gather(rng.integers(len(USER_AGENTS), size=size))),
    )


def mobile_phones(rng: np.random.Generator, count: int) -> pl.Series:
    """Fake German-style mobile numbers: `+49 15x nnnnnnnn`."""
    digits = pl.DataFrame({"prefix": rng.integers(1, 8, size=count), "number": rng.integers(0, 10**8, size=count)})
    return digits.select(
        pl.concat_str(
            pl.lit("+49 15"),
            pl.col("prefix").cast(pl.String),
            pl.lit(" "),
            pl.col("number").cast(pl.String).str.zfill(8),
        )
    ).to_series()


def _public_ips(rng: np.random.Generator, count: int) -> pl.Series:
    octets = pl.DataFrame(
        {
            "a": np.array(PUBLIC_FIRST_OCTETS)[rng.integers(len(PUBLIC_FIRST_OCTETS), size=count)],
            "b": rng.integers(0, 256, size=count),
            "c": rng.integers(0, 256, size=count),
            "d": rng.integers(1, 255, size=count),
        }
    )
    return octets.select(pl.concat_str([pl.col(c).cast(pl.String) for c in "abcd"], separator=".")).to_series()


def _devices(
    rng: np.random.Generator, world: World, is_customer: np.ndarray, slot_persona: np.ndarray
) -> tuple[pl.DataFrame, np.ndarray]:
    """Customers own devices bought for their own personas: device j serves the person's j-th persona."""
    size, persona_count = len(is_customer), len(world.personas)
    held = (slot_persona >= 0).sum(axis=1)
    wanted = rng.choice(len(DEVICE_COUNT_SHARES), size, p=DEVICE_COUNT_SHARES)
    owned = np.where(is_customer, np.minimum(wanted, held), 0)
    person, slot = np.nonzero(np.arange(MAX_PERSONAS) < owned[:, None])
    persona = slot_persona[person, slot]
    devices = pl.DataFrame(
        {
            "device_id": unique_hex_ids(rng, "d-", len(person), 10),
            "person": person,
            "persona": persona,
            "device_type": world.device_types[persona].astype(str),
        }
    )
    device_of = np.full((size, persona_count), -1, dtype=np.int64)
    device_of[person, persona] = np.arange(len(person))
    return devices, device_of


def _drift(
    rng: np.random.Generator, slot_persona: np.ndarray, persona_count: int, drift_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """A `drift_share` of people, each with one new persona they did not hold before."""
    size = len(slot_persona)
    drifted = np.zeros(size, dtype=bool)
    drifted[rng.choice(size, round(drift_share * size), replace=False)] = True
    scores = rng.gumbel(size=(size, persona_count))
    rows, slots = np.nonzero(slot_persona >= 0)
    scores[rows, slot_persona[rows, slots]] = -np.inf
    return drifted, np.where(drifted, scores.argmax(axis=1), -1)


def _take_up_emerging(
    rng: np.random.Generator, drifted: np.ndarray, new_persona: np.ndarray, emerging: int
) -> np.ndarray:
    """`new_persona` with an EMERGING_TAKE_UP of the drifting people taking up the emerging persona instead."""
    movers = np.flatnonzero(drifted)
    taken_up = new_persona.copy()
    taken_up[rng.choice(movers, round(EMERGING_TAKE_UP * len(movers)), replace=False)] = emerging
    return taken_up


def _weight_matrix(slot_persona: np.ndarray, slot_weight: np.ndarray, persona_count: int) -> np.ndarray:
    weights = np.zeros((len(slot_persona), persona_count))
    rows, slots = np.nonzero(slot_persona >= 0)
    weights[rows, slot_persona[rows, slots]] = slot_weight[rows, slots]
    return weights
