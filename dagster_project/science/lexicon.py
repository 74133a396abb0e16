"""Display lexicon of persona labels: how a category reads, which domain it belongs to, which
role an action mix earns.

A shop's category ids ("tennis_rackets") are not words for people; the lexicon gives each a
display name ("tennis rackets") and a domain ("tennis"), the noun a label starts with.
Categories it does not know (imported logs: their genres) read as themselves, underscores as
spaces, and are their own domain. Categories every persona browses (bestsellers, promotions,
gift cards) belong to the storefront, a domain of last resort: it names only a persona that no
other domain does, people seen in the shop's windows and nowhere else.
"""

from __future__ import annotations

# How the storefront domain reads in a label: "Deal and gift buyer".
STOREFRONT_DOMAIN = "deal and gift"

# category -> (display name, domain); the storefront domain names a persona only when no other does.
CATEGORY_LEXICON: dict[str, tuple[str, str]] = {
    "baby_care": ("baby care", "baby"),
    "baby_gear": ("baby gear", "baby"),
    "nursery": ("nursery", "baby"),
    "bags": ("bags", "fashion"),
    "designer_clothing": ("designer clothing", "fashion"),
    "handbags_accessories": ("handbags and accessories", "fashion"),
    "streetwear": ("streetwear", "fashion"),
    "books": ("books", "book"),
    "fiction_books": ("fiction books", "book"),
    "nonfiction_books": ("non-fiction books", "book"),
    "reading_accessories": ("reading accessories", "book"),
    "cameras": ("cameras", "photography"),
    "cat_supplies": ("cat supplies", "pet"),
    "dog_supplies": ("dog supplies", "pet"),
    "cinema_tickets": ("cinema tickets", "film"),
    "home_cinema": ("home cinema", "film"),
    "movies_bluray": ("Blu-ray films", "film"),
    "coffee_tea": ("coffee and tea", "coffee"),
    "cookware": ("cookware", "cooking"),
    "kitchen_appliances": ("kitchen appliances", "cooking"),
    "kitchenware": ("kitchenware", "cooking"),
    "specialty_ingredients": ("specialty ingredients", "cooking"),
    "computer_components": ("computer components", "tech"),
    "headphones": ("headphones", "tech"),
    "smart_home": ("smart home devices", "tech"),
    "smartphones": ("smartphones", "tech"),
    "smartwatches": ("smartwatches", "tech"),
    "televisions": ("televisions", "tech"),
    "fan_merchandise": ("fan merchandise", "sports"),
    "match_tickets": ("match tickets", "sports"),
    "sports_apparel": ("sports apparel", "sports"),
    "sports_nutrition": ("sports nutrition", "sports"),
    "gaming_hardware": ("gaming hardware", "gaming"),
    "video_games": ("video games", "gaming"),
    "toys_games": ("toys and games", "toys"),
    "garden_tools": ("garden tools", "garden"),
    "greenhouse_supplies": ("greenhouse supplies", "garden"),
    "seeds_plants": ("seeds and plants", "garden"),
    "outdoor_gear": ("outdoor gear", "outdoor"),
    "home_decor": ("home decor", "home"),
    "home_essentials": ("home essentials", "home"),
    "luggage": ("luggage", "travel"),
    "travel_accessories": ("travel accessories", "travel"),
    "travel_deals": ("travel deals", "travel"),
    "race_entries": ("race entries", "running"),
    "running_gear": ("running gear", "running"),
    "running_shoes": ("running shoes", "running"),
    "tennis_apparel": ("tennis apparel", "tennis"),
    "tennis_rackets": ("tennis rackets", "tennis"),
    "tennis_tickets": ("tennis tickets", "tennis"),
    "bestsellers": ("bestsellers", STOREFRONT_DOMAIN),
    "gift_cards": ("gift cards", STOREFRONT_DOMAIN),
    "promotions": ("promotions", STOREFRONT_DOMAIN),
}

# Categories whose items are seats at an event: a persona led by them watches, it is a spectator.
TICKET_WORDS = ("ticket", "tickets")

# Role from an action that stands out against the population: actions -> noun.
# Device readings make an athlete, or a player where the domain is a game.
ACTION_ROLES: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"order", "add_to_cart", "purchase", "buy"}), "buyer"),
    (frozenset({"like", "comment", "share"}), "fan"),
    (frozenset({"ticket"}), "support-seeker"),
    (frozenset({"reading"}), "athlete"),
    (frozenset({"search"}), "researcher"),
)
PLAYER_DOMAINS = frozenset({"gaming", "toys"})
PURCHASE_ACTIONS = ACTION_ROLES[0][0]
# A persona whose actions do not stand out gets a neutral role from its commonest action.
VIEWING_ACTIONS = frozenset({"view", "watch", "play", "stream", "listen"})
NEUTRAL_ROLE = "enthusiast"
VIEWER_ROLE = "viewer"
SPECTATOR_ROLE = "spectator"

# How an action reads in a claim: "35% include an order".
ACTION_PHRASES = {
    "add_to_cart": "an add to cart",
    "order": "an order",
    "search": "a search",
    "like": "a like",
    "comment": "a comment",
    "share": "a share",
    "ticket": "a support ticket",
    "reading": "a device reading",
    "page_view": "a page view",
    "click": "a click",
}


def humanised(name: str) -> str:
    """'science_fiction' -> 'science fiction'."""
    return " ".join(name.replace("_", " ").split())


def display_name(category: str) -> str:
    """How a category reads in a label or a claim."""
    return CATEGORY_LEXICON.get(category, (humanised(category), None))[0]


def domain_of(category: str) -> str | None:
    """The domain a category belongs to; an unknown category is its own domain."""
    if category in CATEGORY_LEXICON:
        return CATEGORY_LEXICON[category][1]
    return humanised(category).lower() or None


def is_ticket_category(category: str) -> bool:
    return any(word in display_name(category).lower().split() for word in TICKET_WORDS)


def action_phrase(action: str) -> str:
    """'an add to cart'; an unknown action reads as itself with an article ('a rate')."""
    if action in ACTION_PHRASES:
        return ACTION_PHRASES[action]
    words = humanised(action)
    return ("an " if words[:1].lower() in "aeiou" else "a ") + words
