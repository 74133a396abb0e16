"""What makes the realistic world hard: shared categories and brands, generic items, ambiguous posts, nesting.

The easy world (catalog.PERSONAS alone) gives every persona its own categories and words, so a
category or a word names the persona. Here the personas also browse categories they share with
others (sports apparel for runners and tennis fans, TVs for gamers and film buffs), everyone sees
bestsellers, promotions and gift cards, many posts and searches fit several personas, and a broad
persona (sports fan) shares its categories with the narrower ones nested under it.
"""

from dataclasses import dataclass

from .catalog import Category, Device, Persona, Post

SPORTS_FAN = Persona(
    key="sports_fan",
    label="Sports fan",
    terms=("football", "match", "season", "jersey", "stadium", "league", "highlights", "supporters"),
    categories=(
        Category("fan_merchandise", 50.0, (
            "Bayern Munich home jersey 2026",
            "Borussia Dortmund supporters scarf",
            "Real Madrid away football jersey",
            "Manchester United training top",
            "Club crest beanie hat",
            "Signed replica football",
            "Stadium seat cushion with club colours",
            "League champions commemorative mug",
            "National team world cup jersey",
            "Basketball team snapback cap",
            "Retro league jersey 1990s",
            "Supporters flag 90 x 150 cm",
        )),
        Category("match_tickets", 65.0, (
            "Bundesliga home match ticket",
            "Champions League group stage ticket",
            "Derby match stadium ticket",
            "Cup final hospitality ticket",
            "Season ticket half season",
            "Basketball league game ticket",
            "Handball league match ticket",
            "Stadium tour with museum entry",
            "Away end match ticket",
            "Ice hockey league game ticket",
            "Friendly match family ticket",
            "Women's league match ticket",
        )),
    ),
    queries=(
        "bundesliga table this season",
        "champions league highlights tonight",
        "where to watch the derby match",
        "new home jersey release date",
        "stadium tickets resale league",
        "football transfer news today",
        "best sports bar for the match",
        "league top scorers this season",
        "cup final tickets price",
        "match highlights extended",
        "supporters club membership",
    ),
    posts=(
        Post("What a derby, the whole stadium was shaking at the final whistle", ("football", "derby")),
        Post("New season, new jersey, same hopes", ("football", "jersey")),
        Post("Three points on the road, the supporters were loud all match", ("football", "away")),
        Post("Champions League nights under the lights never get old", ("football", "ucl")),
        Post("Watching the highlights again, that goal from outside the box", ("football", "highlights")),
        Post("League table looks tight going into the final weeks of the season", ("football", "league")),
        Post("Got my season ticket renewed, same seat behind the goal", ("football", "stadium")),
        Post("Penalty shootout in the cup, my nerves are gone", ("football", "cup")),
        Post("Match day ritual: scarf, pretzel, and singing with the supporters", ("football", "matchday")),
        Post("Transfer deadline day rumours are wild this year", ("football", "transfers")),
        Post("Basketball playoffs and football on the same night, perfect evening", ("sports", "playoffs")),
    ),
    device=Device("smart_tv", "screen_hours", 3.0, 1.5, (
        "live match",
        "highlights replay",
        "pre-match show",
        "league roundup",
        "post-match analysis",
        "cup final broadcast",
    )),
    ticket_subjects=(
        "Match tickets not delivered",
        "Jersey printed with wrong name",
        "Refund for postponed match",
        "Scarf arrived damaged",
        "Season ticket card not working",
    ),
)


@dataclass(frozen=True)
class SharedCategory:
    """A category browsed by several personas: categories and brands alone no longer name the persona."""

    category: Category
    personas: tuple[str, ...]


SHARED_CATEGORIES: tuple[SharedCategory, ...] = (
    SharedCategory(Category("sports_apparel", 55.0, (
        "Nike Dri-FIT training t-shirt",
        "Adidas Own the Run shorts",
        "Asics lightweight sports jacket",
        "Under Armour HeatGear compression shirt",
        "Puma sports socks five-pack",
        "Nike Pro sports bra",
        "Adidas Tiro track pants",
        "New Balance performance cap",
        "Nike Club fleece hoodie",
        "Adidas sweatband set",
        "Asics sports backpack 20L",
        "Under Armour training gloves",
    )), ("sports_fan", "tennis_fan", "runner")),
    SharedCategory(Category("sports_nutrition", 25.0, (
        "Whey protein powder vanilla 1 kg",
        "Electrolyte tablets tube of 20",
        "Isotonic sports drink powder",
        "Protein bars box of 12",
        "BCAA recovery drink",
        "Magnesium supplement for athletes",
        "Shaker bottle 700 ml",
        "Caffeine energy chews",
        "Recovery drink chocolate",
        "Oat energy bars variety pack",
        "Creatine monohydrate 500 g",
        "Vitamin D3 sport capsules",
    )), ("sports_fan", "runner", "tennis_fan")),
    SharedCategory(Category("televisions", 700.0, (
        "Samsung 55 inch QLED 4K TV",
        "LG OLED C4 65 inch TV",
        "Sony Bravia 7 4K TV",
        "TCL 50 inch 4K Google TV",
        "Philips Ambilight 55 inch TV",
        "Hisense 65 inch ULED TV",
        "LG 120 Hz 48 inch OLED TV",
        "Samsung Neo QLED 75 inch TV",
        "TV wall mount tilting",
        "Sony soundbar for TV",
        "HDMI 2.1 cable 2 m",
        "Universal TV remote",
    )), ("gamer", "movie_buff", "tech_enthusiast", "sports_fan")),
    SharedCategory(Category("headphones", 150.0, (
        "Sony WH-1000XM5 noise cancelling headphones",
        "Apple AirPods Pro 2",
        "Bose QuietComfort Ultra headphones",
        "Samsung Galaxy Buds3 Pro",
        "Jabra Elite 10 earbuds",
        "Sennheiser Momentum 4 headphones",
        "JBL Tune 770NC headphones",
        "Beats Fit Pro earbuds",
        "Shokz OpenRun bone conduction headphones",
        "Anker Soundcore Space One headphones",
        "Headphone carrying case",
        "Replacement ear cushions",
    )), ("gamer", "tech_enthusiast", "runner", "traveller")),
    SharedCategory(Category("kitchenware", 30.0, (
        "Glass food storage containers set",
        "Silicone spatula set",
        "Bamboo cutting board large",
        "Stainless steel mixing bowls",
        "Bottle brush and drying rack",
        "Reusable silicone food bags",
        "Insulated lunch box",
        "Measuring cups and spoons set",
        "Electric kettle 1.7 L",
        "Hand blender with whisk",
        "Steamer basket stainless",
        "Dish towels pack of 6",
    )), ("home_cook", "new_parent")),
    SharedCategory(Category("books", 18.0, (
        "The Salt Fat Acid Heat cookbook",
        "The Whole-Brain Child parenting book",
        "Lonely Planet Europe travel guide",
        "Atomic Habits paperback",
        "The Thursday Murder Club novel",
        "Born to Run paperback",
        "The Body Keeps the Score paperback",
        "Ottolenghi Simple cookbook",
        "Where the Crawdads Sing paperback",
        "The Expecting Better pregnancy book",
        "Rick Steves Italy travel guide",
        "Sapiens hardcover",
    )), ("book_lover", "home_cook", "new_parent", "traveller")),
    SharedCategory(Category("outdoor_gear", 60.0, (
        "Waterproof rain jacket packable",
        "Trekking backpack 30 L",
        "Insulated water bottle 750 ml",
        "Headlamp rechargeable 400 lumen",
        "Quick-dry travel towel",
        "Sun hat with neck cover",
        "Merino wool base layer",
        "Folding camping chair",
        "Hiking socks pair",
        "Picnic blanket waterproof",
        "Insect repellent spray",
        "Portable power bank 20000 mAh",
    )), ("traveller", "gardener", "runner")),
    SharedCategory(Category("home_essentials", 15.0, (
        "Enzyme stain remover spray",
        "Robot vacuum cleaner",
        "Washable floor mats set",
        "Laundry detergent sensitive 3 L",
        "Air purifier HEPA",
        "Lint roller pack",
        "Storage baskets set of 3",
        "Odour neutraliser spray",
        "Cordless stick vacuum",
        "Microfibre cleaning cloths",
        "Baby gate and pet gate",
        "Humidifier for bedroom",
    )), ("new_parent", "pet_owner", "home_cook", "home_improver")),
    SharedCategory(Category("bags", 90.0, (
        "Leather weekender bag",
        "Canvas tote bag",
        "Crossbody travel bag anti-theft",
        "Rolltop backpack waterproof",
        "Designer belt bag",
        "Packable daypack",
        "Laptop sleeve 14 inch",
        "Duffel bag 40 L",
        "Mini shoulder bag",
        "Toiletry bag hanging",
        "Passport wallet RFID",
        "Gym bag with shoe compartment",
    )), ("fashionista", "traveller", "sports_fan")),
    SharedCategory(Category("smartwatches", 250.0, (
        "Apple Watch Series 10",
        "Garmin Venu 3 smartwatch",
        "Samsung Galaxy Watch 7",
        "Fitbit Charge 6 fitness tracker",
        "Polar Pacer Pro sports watch",
        "Amazfit GTR 4 smartwatch",
        "Google Pixel Watch 3",
        "Coros Pace 3 GPS watch",
        "Withings ScanWatch 2",
        "Smartwatch silicone sport band",
        "Smartwatch charging dock",
        "Screen protector for smartwatch",
    )), ("tech_enthusiast", "runner", "tennis_fan", "sports_fan")),
    SharedCategory(Category("coffee_tea", 20.0, (
        "Single origin coffee beans 1 kg",
        "Pour-over coffee dripper set",
        "Loose leaf green tea tin",
        "Burr coffee grinder manual",
        "Chai spice tea blend",
        "French press 1 L",
        "Decaf coffee beans 500 g",
        "Milk frother handheld",
        "Earl grey tea bags 100",
        "Cold brew coffee maker",
        "Matcha powder ceremonial grade",
        "Coffee mug double wall glass",
    )), ("home_cook", "book_lover", "new_parent")),
    SharedCategory(Category("toys_games", 30.0, (
        "Wooden building blocks set",
        "Catan board game",
        "LEGO Classic creative box",
        "Plush squeaky toy set",
        "Puzzle 1000 pieces landscape",
        "Interactive treat puzzle toy",
        "Card game for family night",
        "Remote control car",
        "Stacking rings toy",
        "Rope tug toy",
        "Chess set wooden",
        "Bath toys set",
    )), ("new_parent", "pet_owner", "gamer")),
    SharedCategory(Category("home_decor", 45.0, (
        "Linen cushion cover set",
        "Ceramic plant pot large",
        "Floor lamp with reading light",
        "Woven wall hanging",
        "Wooden bookshelf five tiers",
        "Scented soy candle",
        "Framed botanical prints set",
        "Macrame plant hanger",
        "Velvet throw blanket",
        "Round wall mirror gold",
        "Jute area rug",
        "Vase set glass",
    )), ("fashionista", "gardener", "book_lover", "home_improver")),
    SharedCategory(Category("cameras", 500.0, (
        "Sony Alpha 7 IV mirrorless camera",
        "Fujifilm X100VI compact camera",
        "GoPro HERO13 action camera",
        "Canon EOS R50 camera kit",
        "DJI Osmo Pocket 3",
        "Instax Mini 12 instant camera",
        "Camera travel tripod",
        "SD card 128 GB V30",
        "Camera sling bag",
        "Ring light with stand",
        "DJI Mini 4 Pro drone",
        "Lens cleaning kit",
    )), ("traveller", "tech_enthusiast", "fashionista")),
)

# Generic popular items everyone sees: a shop's front page, not anyone's interest.
GENERIC_CATEGORIES: tuple[Category, ...] = (
    Category("bestsellers", 25.0, (
        "Phone charging cable 2-pack",
        "Scented candle gift set",
        "AA batteries 24-pack",
        "Umbrella compact automatic",
        "Coffee mug set of 4",
        "Wireless charging pad",
        "LED desk lamp",
        "Water bottle stainless 1 L",
        "Bath towel set",
        "Reading glasses three-pack",
        "Notebook A5 dotted",
        "Travel mug insulated",
    )),
    Category("promotions", 30.0, (
        "Weekend deal: bundle of the week",
        "Flash sale mystery box",
        "Black week offer pack",
        "Clearance sale surprise item",
        "Two for one summer offer",
        "Members day special deal",
        "Daily deal lucky dip",
        "End of season sale bundle",
        "Bundle and save offer",
        "Limited time deal pack",
        "Outlet deal of the day",
        "Spring sale bundle",
    )),
    Category("gift_cards", 50.0, (
        "Gift card 25 EUR",
        "Gift card 50 EUR",
        "Gift card 100 EUR",
        "Birthday gift card",
        "Thank you gift card",
        "Holiday gift card",
        "E-gift card instant delivery",
        "Gift card with greeting card",
        "Congratulations gift card",
        "Gift card 10 EUR",
        "Gift box with voucher",
        "Anniversary gift card",
    )),
)

GENERIC_QUERIES: tuple[str, ...] = (
    "gift ideas under 50",
    "black friday deals",
    "free shipping code",
    "gift card balance",
    "best sellers this week",
    "sale today",
    "birthday present ideas",
    "delivery times christmas",
    "return policy",
    "student discount",
)

GENERIC_POSTS: tuple[Post, ...] = (
    Post("Happy Friday everyone, enjoy the weekend", ("weekend",)),
    Post("Anyone else already thinking about holiday gifts", ("gifts",)),
    Post("Big sale this week, my basket is full again", ("sale",)),
    Post("Monday motivation: small steps every day", ("motivation",)),
    Post("Coffee first, everything else later", ("coffee",)),
    Post("Rainy Sunday, perfect for doing nothing", ("sunday",)),
    Post("Just moved into a new flat, so many boxes", ("home",)),
    Post("Birthday shopping done in ten minutes, online gift cards save lives", ("birthday",)),
)


@dataclass(frozen=True)
class SharedText:
    """A post or search that fits several personas, so text alone does not tell them apart."""

    text: str
    personas: tuple[str, ...]
    tags: tuple[str, ...] = ()


SHARED_POSTS: tuple[SharedText, ...] = (
    SharedText("Early morning workout done, legs are sore", ("runner", "tennis_fan", "sports_fan"), ("workout",)),
    SharedText("New trainers arrived, cannot wait to try them", ("runner", "tennis_fan", "sports_fan"), ("gear",)),
    SharedText("Weekend plans: sport, sun and a long brunch", ("runner", "tennis_fan", "sports_fan"), ("weekend",)),
    SharedText(
        "Finally upgraded to a big 4K TV, the picture is unreal", ("gamer", "movie_buff", "sports_fan"), ("tv",)
    ),
    SharedText("Late night on the couch with a screen and snacks", ("gamer", "movie_buff"), ("night",)),
    SharedText("Noise cancelling headphones changed my commute", ("tech_enthusiast", "traveller", "gamer"), ("audio",)),
    SharedText(
        "Meal prep with the little one watching from the high chair", ("home_cook", "new_parent"), ("mealprep",)
    ),
    SharedText("Batch cooking for the week, freezer is full", ("home_cook", "new_parent"), ("batchcooking",)),
    SharedText("Finished a great book on the train today", ("book_lover", "traveller"), ("reading",)),
    SharedText(
        "Rain jacket and boots, ready for anything outdoors", ("traveller", "gardener", "runner"), ("outdoors",)
    ),
    SharedText(
        "Cleaning the whole house before the weekend, again", ("new_parent", "pet_owner", "home_improver"),
        ("cleaning",),
    ),
    SharedText("New bag, new season, feeling good", ("fashionista", "traveller"), ("style",)),
    SharedText(
        "The new phone camera is better than my old DSLR", ("tech_enthusiast", "traveller", "fashionista"), ("photo",)
    ),
    SharedText(
        "Sunday routine: long walk, then cooking something slow", ("home_cook", "pet_owner", "gardener"), ("sunday",)
    ),
)

SHARED_QUERIES: tuple[SharedText, ...] = (
    SharedText("nike sale", ("runner", "tennis_fan", "sports_fan")),
    SharedText("adidas shoes", ("runner", "tennis_fan", "sports_fan")),
    SharedText("protein powder", ("runner", "sports_fan", "tennis_fan")),
    SharedText("best 4k tv 55 inch", ("gamer", "movie_buff", "tech_enthusiast", "sports_fan")),
    SharedText("oled vs qled", ("gamer", "movie_buff", "tech_enthusiast")),
    SharedText("noise cancelling headphones", ("gamer", "tech_enthusiast", "traveller", "runner")),
    SharedText("food storage containers", ("home_cook", "new_parent")),
    SharedText("electric kettle", ("home_cook", "new_parent")),
    SharedText("bestselling books this month", ("book_lover", "traveller", "home_cook")),
    SharedText("waterproof jacket", ("traveller", "gardener", "runner")),
    SharedText("robot vacuum pet hair", ("pet_owner", "new_parent")),
    SharedText("weekender bag", ("fashionista", "traveller")),
)

# The planted nesting: a narrower persona shares the broad one's categories (see SHARED_CATEGORIES).
PARENT_PERSONA: dict[str, str] = {"tennis_fan": "sports_fan", "runner": "sports_fan"}
