"""A believable shop as plain rows, made deterministically from one `random.Random(seed)`.

No database here: `generate_catalog` makes the products and the e-mail
campaign calendar, `generate_contacts` yields one `ContactBundle` per contact
(the contact, its tags, orders with items, events), lazily, so a million
contacts never sit in memory at once. Every timestamp is an integer number of
seconds since the epoch (UTC) relative to the given "now", so the data is
always recent. The same (contacts, seed, now) always gives the same rows,
whatever chunk size the loader uses and however many processes make them:
each block of BLOCK contacts has a random stream of its own.

Example:
    >>> rng = random.Random(7)
    >>> catalog = generate_catalog(rng, n_contacts=1000, now_ts=1_750_000_000)
    >>> bundle = next(generate_contacts(7, catalog, n_contacts=1000, now_ts=1_750_000_000))
    >>> bundle.contact[0]
    'cust-1'
"""

from __future__ import annotations

import math
import random
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate

HOUR = 3600
DAY = 24 * HOUR
HISTORY_DAYS = 730
SHOP_URL = "https://shop.example.com"

# Column order of the tuples this module yields (the loader maps them to model fields).
CONTACT_FIELDS = (
    "external_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "country",
    "city",
    "gender",
    "birth_date",
    "created_at",
    "email_status",
    "traffic_source",
    "utm_campaign",
    "attributes",
)
ORDER_FIELDS = ("external_id", "ordered_at", "source", "total_cents", "items")  # items: (product index, qty, cents)
EVENT_FIELDS = ("type", "occurred_at", "device", "url", "campaign", "properties_json")

EVENT_TYPES = (
    "email_sent",
    "email_open",
    "email_click",
    "email_bounce",
    "email_complaint",
    "unsubscribe",
    "page_view",
    "product_view",
    "cart_add",
    "checkout_start",
    "app_open",
)
TAG_NAMES = ("vip", "newsletter", "loyalty_member", "student", "b2b", "wholesale", "beta_tester", "influencer")
ATTRIBUTE_TYPES = {
    "plan": "choice",
    "shoe_size": "number",
    "loyalty_points": "number",
    "marketing_opt_in": "boolean",
    "company": "text",
}


class Weighted:
    """Pick from values with fixed relative weights in O(log n), one `rng.random()` per pick."""

    __slots__ = ("values", "cum", "total")

    def __init__(self, pairs: Sequence[tuple[object, float]]) -> None:
        self.values = tuple(value for value, _ in pairs)
        self.cum = tuple(accumulate(weight for _, weight in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random):
        return self.values[bisect_right(self.cum, rng.random() * self.total)]


# ---------------------------------------------------------------------------------------------------------------
# The catalog: producers, categories, products with skewed popularity.

PRODUCERS = (
    ("Acme", 3.0),
    ("Nordwind", 1.4),
    ("Polar Peak", 1.2),
    ("Vistula Works", 1.0),
    ("Brightline", 1.0),
    ("Kestrel", 1.0),
    ("Urban Fox", 0.9),
    ("Terra Nova", 0.9),
    ("Bluefin", 0.8),
    ("Ironbark", 0.8),
    ("Solstice", 0.7),
    ("Maple & Co", 0.7),
    ("Zenith Labs", 0.6),
    ("Copperleaf", 0.5),
)
# category: (share of products, typical price in cents, product nouns)
CATEGORIES = {
    "Apparel": (20, 4500, ("T-Shirt", "Hoodie", "Jacket", "Jeans", "Dress", "Sweater", "Shorts", "Polo")),
    "Shoes": (12, 8900, ("Runner", "Sneaker", "Hiking Boot", "Sandal", "Loafer", "Trail Shoe", "Court Shoe")),
    "Accessories": (14, 1500, ("Insoles", "Laces", "Cap", "Socks", "Gloves", "Belt", "Phone Case", "Sunglasses")),
    "Sports": (12, 3900, ("Yoga Mat", "Dumbbell Set", "Resistance Band", "Football", "Tennis Racket", "Helmet")),
    "Outdoor": (10, 7500, ("Tent", "Backpack", "Sleeping Bag", "Headlamp", "Camping Stove", "Trekking Poles")),
    "Electronics": (10, 11900, ("Headphones", "Smartwatch", "Speaker", "Power Bank", "Fitness Tracker", "Camera")),
    "Home": (10, 2900, ("Mug", "Blanket", "Lamp", "Cushion", "Water Bottle", "Storage Box")),
    "Beauty": (8, 1900, ("Face Cream", "Shampoo", "Lip Balm", "Sunscreen", "Body Lotion")),
    "Kids": (6, 2900, ("Rain Jacket", "School Bag", "Kids Sneaker", "Puzzle", "Lunch Box")),
    "Books": (6, 2200, ("Trail Guide", "Cookbook", "Training Plan", "Travel Journal")),
}
ADJECTIVES = ("Classic", "Pro", "Ultra", "Eco", "Light", "Urban", "Alpine", "Core", "Flex", "Max", "Nova", "Storm",
              "Swift", "Terra", "Aero", "Summit", "Drift", "Pulse")
# The contract's cross-selling example: SKU-2 and SKU-3 are accessories of SKU-1.
HERO_PRODUCTS = (
    ("SKU-1", "Acme Trail Runner", "Acme", "Shoes", 12900),
    ("SKU-2", "Acme Trail Runner Insoles", "Acme", "Accessories", 1999),
    ("SKU-3", "Acme Trail Runner Laces", "Acme", "Accessories", 899),
)
HERO, HERO_ACCESSORIES = 0, (1, 2)


@dataclass(frozen=True, slots=True)
class ProductSpec:
    sku: str
    name: str
    producer: str
    category: str
    price_cents: int


@dataclass(frozen=True, slots=True)
class Campaign:
    sent_at: int
    name: str


@dataclass(frozen=True)
class Catalog:
    products: tuple[ProductSpec, ...]
    popularity: Weighted  # product index by global popularity (Zipf-like)
    by_category: dict[str, Weighted]  # product index within a category, same popularity
    categories: Weighted  # category by the popularity of its products, for a contact's favourite
    campaigns: tuple[Campaign, ...]  # e-mail sends, oldest first
    campaign_times: tuple[int, ...]


def product_count_for(n_contacts: int) -> int:
    """A few hundred products per 100,000 contacts, never fewer than 60."""
    return max(60, min(5000, round(n_contacts * 3 / 1000)))


def generate_catalog(rng: random.Random, *, n_contacts: int, now_ts: int) -> Catalog:
    n_products = product_count_for(n_contacts)
    producers = Weighted(PRODUCERS)
    category_shares = Weighted([(name, share) for name, (share, _, _) in CATEGORIES.items()])
    products = [ProductSpec(*hero) for hero in HERO_PRODUCTS]
    for number in range(len(products) + 1, n_products + 1):
        category = category_shares.pick(rng)
        _, typical_cents, nouns = CATEGORIES[category]
        producer = producers.pick(rng)
        # Prices end in .99, spread log-normally around the category's typical price.
        cents = max(199, round(typical_cents * rng.lognormvariate(0, 0.45) / 100) * 100 - 1)
        name = f"{producer} {rng.choice(ADJECTIVES)} {rng.choice(nouns)}"
        products.append(ProductSpec(f"SKU-{number}", name, producer, category, cents))

    # Zipf-Mandelbrot popularity 1 / (rank + 5): SKU-1 is the best seller, the rest shuffled.
    # The accessories sell mostly with SKU-1 (see _order_items), so they rank like any other product.
    ranks = list(range(1, n_products))
    rng.shuffle(ranks)
    weight = [1 / 5] + [1 / (rank + 5) for rank in ranks]
    popularity = Weighted(list(enumerate(weight)))
    by_category: dict[str, list[tuple[int, float]]] = {}
    for index, product in enumerate(products):
        by_category.setdefault(product.category, []).append((index, weight[index]))
    categories = Weighted([(name, sum(w for _, w in pairs)) for name, pairs in by_category.items()])
    campaigns = _campaign_calendar(now_ts)
    return Catalog(
        products=tuple(products),
        popularity=popularity,
        by_category={name: Weighted(pairs) for name, pairs in by_category.items()},
        categories=categories,
        campaigns=campaigns,
        campaign_times=tuple(c.sent_at for c in campaigns),
    )


PROMOTIONS = (
    (1, 8, "new_year_sale"),
    (2, 10, "valentines"),
    (3, 20, "spring_sale"),
    (4, 22, "acme_launch"),
    (5, 15, "outdoor_week"),
    (6, 21, "summer_sale"),
    (9, 1, "back_to_school"),
    (10, 15, "autumn_collection"),
    (11, 28, "black_friday"),
    (12, 8, "christmas"),
)


def _campaign_calendar(now_ts: int) -> tuple[Campaign, ...]:
    """A weekly newsletter on Tuesdays 09:00 UTC plus dated promotions, over the two years before now."""
    start = now_ts - HISTORY_DAYS * DAY
    start_day = datetime.fromtimestamp(start, UTC).replace(hour=9, minute=0, second=0)
    first_tuesday = start_day + timedelta(days=(1 - start_day.weekday()) % 7)
    sends = []
    ts = int(first_tuesday.timestamp())
    while ts <= now_ts:
        sends.append(Campaign(ts, "weekly_newsletter"))
        ts += 7 * DAY
    for year in range(start_day.year, start_day.year + 3):
        for month, day, name in PROMOTIONS:
            ts = int(datetime(year, month, day, 10, 0, tzinfo=UTC).timestamp())
            if start <= ts <= now_ts:
                sends.append(Campaign(ts, f"{name}_{year}"))
    # The abandoned-cart and win-back programmes send every day.
    for days_back in range(HISTORY_DAYS):
        ts = int(start_day.timestamp()) + days_back * DAY + 6 * HOUR
        if ts <= now_ts:
            sends.append(Campaign(ts, "win_back" if days_back % 2 else "abandoned_cart"))
    return tuple(sorted(sends, key=lambda c: (c.sent_at, c.name)))


# ---------------------------------------------------------------------------------------------------------------
# People.

COUNTRIES = Weighted([
    ("PL", 22), ("DE", 18), ("GB", 13), ("US", 12), ("FR", 9), ("NL", 5), ("IT", 5), ("ES", 5),
    ("CZ", 3), ("SE", 3), ("AT", 2), ("IE", 1), (None, 2),
])  # fmt: skip
CITIES = {
    "PL": Weighted([("Warszawa", 30), ("Kraków", 15), ("Wrocław", 12), ("Poznań", 10), ("Gdańsk", 10), ("Łódź", 8),
                    ("Katowice", 6), ("Lublin", 5)]),
    "DE": Weighted([("Berlin", 25), ("Hamburg", 15), ("München", 15), ("Köln", 12), ("Frankfurt am Main", 10),
                    ("Stuttgart", 8), ("Leipzig", 6)]),
    "GB": Weighted([("London", 40), ("Manchester", 12), ("Birmingham", 12), ("Leeds", 8), ("Glasgow", 8),
                    ("Bristol", 8), ("Edinburgh", 6)]),
    "US": Weighted([("New York", 20), ("Los Angeles", 15), ("Chicago", 12), ("Houston", 8), ("Seattle", 8),
                    ("Austin", 7), ("Boston", 7), ("Denver", 5)]),
    "FR": Weighted([("Paris", 40), ("Lyon", 15), ("Marseille", 12), ("Toulouse", 10), ("Nice", 8), ("Bordeaux", 8),
                    ("Lille", 7)]),
    "NL": Weighted([("Amsterdam", 35), ("Rotterdam", 20), ("Utrecht", 15), ("Den Haag", 15), ("Eindhoven", 10)]),
    "IT": Weighted([("Roma", 30), ("Milano", 30), ("Napoli", 12), ("Torino", 12), ("Bologna", 8), ("Firenze", 8)]),
    "ES": Weighted([("Madrid", 35), ("Barcelona", 30), ("Valencia", 12), ("Sevilla", 10), ("Bilbao", 8)]),
    "CZ": Weighted([("Praha", 50), ("Brno", 25), ("Ostrava", 12), ("Plzeň", 8)]),
    "SE": Weighted([("Stockholm", 45), ("Göteborg", 25), ("Malmö", 18), ("Uppsala", 10)]),
    "AT": Weighted([("Wien", 55), ("Graz", 18), ("Linz", 14), ("Salzburg", 13)]),
    "IE": Weighted([("Dublin", 60), ("Cork", 20), ("Galway", 12), ("Limerick", 8)]),
}  # fmt: skip
PHONE_PREFIX = {"PL": "+48", "DE": "+49", "GB": "+44", "US": "+1", "FR": "+33", "NL": "+31", "IT": "+39",
                "ES": "+34", "CZ": "+420", "SE": "+46", "AT": "+43", "IE": "+353"}
COUNTRY_LANGUAGE = {"PL": "pl", "DE": "de", "AT": "de", "GB": "en", "US": "en", "IE": "en", "FR": "fr", "NL": "nl",
                    "IT": "it", "ES": "es", "CZ": "cz", "SE": "se", None: "en"}
# language: (female first names, male first names, last names as (male form, female form))
NAMES = {
    "pl": (("Anna", "Maria", "Katarzyna", "Małgorzata", "Agnieszka", "Zofia", "Julia", "Natalia", "Ewa", "Ola"),
           ("Piotr", "Krzysztof", "Andrzej", "Tomasz", "Paweł", "Michał", "Jakub", "Marcin", "Kamil", "Łukasz"),
           (("Nowak", "Nowak"), ("Kowalski", "Kowalska"), ("Wiśniewski", "Wiśniewska"), ("Wójcik", "Wójcik"),
            ("Kamiński", "Kamińska"), ("Lewandowski", "Lewandowska"), ("Zieliński", "Zielińska"), ("Mazur", "Mazur"),
            ("Woźniak", "Woźniak"), ("Krawczyk", "Krawczyk"), ("Zając", "Zając"), ("Król", "Król"))),
    "de": (("Anna", "Lena", "Sophie", "Marie", "Laura", "Julia", "Katrin", "Sabine", "Jana", "Mia"),
           ("Lukas", "Jonas", "Felix", "Maximilian", "Paul", "Thomas", "Stefan", "Michael", "Jan", "Tobias"),
           tuple((n, n) for n in ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner",
                                  "Becker", "Schulz", "Hoffmann", "Koch", "Richter"))),
    "en": (("Emma", "Olivia", "Sophia", "Emily", "Charlotte", "Grace", "Chloe", "Lucy", "Hannah", "Sarah"),
           ("James", "Oliver", "Jack", "Harry", "William", "Michael", "Daniel", "Thomas", "Noah", "Ethan"),
           tuple((n, n) for n in ("Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Walker",
                                  "O'Brien", "Miller", "Clarke", "Murphy"))),
    "fr": (("Camille", "Léa", "Manon", "Chloé", "Inès", "Emma", "Louise", "Sarah", "Julie", "Élodie"),
           ("Lucas", "Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Nathan", "Théo", "Antoine", "Julien"),
           tuple((n, n) for n in ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
                                  "Leroy", "Moreau", "Lefèvre", "Girard"))),
    "nl": (("Emma", "Sanne", "Lotte", "Anouk", "Fleur", "Eva", "Lisa", "Sophie"),
           ("Daan", "Sem", "Lucas", "Bram", "Thijs", "Ruben", "Jesse", "Lars"),
           tuple((n, n) for n in ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit",
                                  "Mulder"))),
    "it": (("Giulia", "Francesca", "Chiara", "Sara", "Martina", "Alessia", "Elena", "Valentina"),
           ("Marco", "Alessandro", "Luca", "Matteo", "Francesco", "Andrea", "Lorenzo", "Davide"),
           tuple((n, n) for n in ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci"))),
    "es": (("Lucía", "María", "Paula", "Sofía", "Carmen", "Laura", "Marta", "Elena"),
           ("Hugo", "Pablo", "Alejandro", "Daniel", "Javier", "Sergio", "Carlos", "Álvaro"),
           tuple((n, n) for n in ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
                                  "Pérez"))),
    "cz": (("Jana", "Eva", "Tereza", "Lucie", "Kateřina", "Petra"),
           ("Jan", "Petr", "Tomáš", "Jakub", "Martin", "Lukáš"),
           (("Novák", "Nováková"), ("Svoboda", "Svobodová"), ("Dvořák", "Dvořáková"), ("Černý", "Černá"),
            ("Procházka", "Procházková"), ("Kučera", "Kučerová"))),
    "se": (("Alice", "Maja", "Elsa", "Astrid", "Ebba", "Saga"),
           ("Erik", "Lars", "Oscar", "William", "Hugo", "Nils"),
           tuple((n, n) for n in ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson"))),
}  # fmt: skip
EMAIL_DOMAINS = Weighted([("example.com", 40), ("example.net", 20), ("example.org", 15), ("mail.example", 15),
                          ("inbox.example", 10)])
GENDERS = Weighted([("female", 51), ("male", 47), ("non_binary", 2)])
EMAIL_STATUSES = Weighted([("subscribed", 68), ("never_subscribed", 12), ("unsubscribed", 13), ("bounced", 5),
                           ("complained", 2)])
TRAFFIC_SOURCES = Weighted([("organic", 28), ("direct", 25), ("paid_search", 15), ("paid_social", 12),
                            ("referral", 7), ("email", 6), ("affiliate", 4), ("other", 1), (None, 2)])
UTM_CAMPAIGNS = {
    "paid_search": ("brand_search", "generic_search", "shopping_feed"),
    "paid_social": ("spring_sale", "summer_sale", "black_friday", "retargeting", "influencer_collab"),
    "email": ("weekly_newsletter", "welcome_series"),
    "affiliate": ("affiliate_partners", "cashback_network"),
    "referral": ("refer_a_friend",),
}
ORDER_SOURCES = Weighted([("direct", 26), ("organic", 24), ("email", 16), ("paid_search", 13), ("paid_social", 9),
                          ("referral", 5), ("affiliate", 4)])
ITEMS_PER_ORDER = Weighted([(1, 40), (2, 30), (3, 20), (4, 10)])
QUANTITIES = Weighted([(1, 85), (2, 11), (3, 4)])
PLANS = Weighted([("free", 55), ("plus", 30), ("premium", 15)])
# What the contact's events come from: one device kind, or several.
DEVICE_PROFILES = Weighted([("mobile_only", 38), ("desktop_only", 27), ("cross", 30), ("tablet_only", 5)])
CROSS_DEVICES = Weighted([("mobile", 50), ("desktop", 40), ("tablet", 10)])
PAGES = Weighted([("/", 40), ("/sale", 12), ("/new", 10), ("/blog/running-tips", 4), ("/blog/packing-list", 3),
                  ("/account", 6), ("/help/shipping", 3), ("/stores", 2)])
COMPANY_WORDS = ("Nordic", "Vistula", "Alpine", "Harbor", "Summit", "Riverside", "Oak", "Granite", "Blue Lake")
COMPANY_SUFFIX = {"PL": "Sp. z o.o.", "DE": "GmbH", "AT": "GmbH", "FR": "SARL", "NL": "B.V.", "IT": "S.r.l.",
                  "ES": "S.L.", "CZ": "s.r.o.", "SE": "AB", "GB": "Ltd", "IE": "Ltd", "US": "Inc."}


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(ch for ch in folded.encode("ascii", "ignore").decode() if ch.isalnum()).lower()


@dataclass(slots=True)
class ContactBundle:
    """One contact with everything that hangs off it; see the *_FIELDS tuples for the column order."""

    index: int
    contact: tuple
    tags: tuple[str, ...]
    orders: list[tuple]
    events: list[tuple]


@dataclass(slots=True)
class _Traits:
    """Hidden per-contact behaviour the rows are drawn from (never stored)."""

    created: int
    favourite: str
    devices: str
    traffic_source: str | None
    email_status: str | None
    email_end: int


# Contacts are drawn in blocks of this many, each block from a random stream of its own (seeded with the
# seed and the block's number), so that blocks can be made in any order or in parallel processes and still
# give the same rows.
BLOCK = 1000
MAX_ORDERS_PER_CONTACT = 301  # see _order_times


def generate_contacts(
    seed: int, catalog: Catalog, *, n_contacts: int, now_ts: int, start: int = 0, stop: int | None = None
) -> Iterator[ContactBundle]:
    """Yield contacts start..stop-1 (default: all n_contacts) in order, each with its tags, orders and events."""
    stop = n_contacts if stop is None else min(stop, n_contacts)
    ascii_cache: dict[str, str] = {}
    for block_start in range(start - start % BLOCK, stop, BLOCK):
        rng = random.Random(f"demo contacts {seed} {block_start // BLOCK}")
        for index in range(block_start, min(block_start + BLOCK, stop)):
            bundle = _bundle(rng, catalog, index, now_ts, ascii_cache)
            if index >= start:
                yield bundle


def _bundle(rng: random.Random, catalog: Catalog, index: int, now_ts: int, ascii_cache: dict) -> ContactBundle:
    contact, traits, country, name = _contact_row(rng, index, now_ts, ascii_cache)
    traits.favourite = catalog.categories.pick(rng)
    orders = []
    spent_cents = 0
    for number, ordered_at in enumerate(_order_times(rng, traits.created, now_ts), start=1):
        items = _order_items(rng, catalog, traits.favourite)
        total = sum(quantity * cents for _, quantity, cents in items)
        spent_cents += total
        orders.append((f"ord-{index + 1}-{number}", ordered_at, _order_source(rng, traits), total, items))
    events = _events(rng, catalog, traits, orders, now_ts)
    tags = _tags(rng, traits, len(orders), spent_cents)
    contact[-1] = _attributes(rng, traits, country, name, tags, spent_cents)
    return ContactBundle(index, tuple(contact), tags, orders, events)


def _contact_row(rng: random.Random, index: int, now_ts: int, ascii_cache: dict[str, str]):
    country = COUNTRIES.pick(rng)
    female_names, male_names, last_names = NAMES[COUNTRY_LANGUAGE[country]]
    gender = GENDERS.pick(rng)
    feminine = gender == "female" or (gender == "non_binary" and rng.random() < 0.5)
    first = rng.choice(female_names if feminine else male_names)
    last = rng.choice(last_names)[1 if feminine else 0]
    # Sign-ups grow over the two years: the density of "days ago" falls linearly to zero.
    created = now_ts - int(HISTORY_DAYS * DAY * (1 - math.sqrt(rng.random())))
    email = email_status = None
    if rng.random() < 0.97:
        local = ascii_cache.get(first + "|" + last)
        if local is None:
            local = ascii_cache[first + "|" + last] = f"{_ascii(first)}.{_ascii(last)}"
        email = f"{local}.{index + 1}@{EMAIL_DOMAINS.pick(rng)}"
        email_status = EMAIL_STATUSES.pick(rng)
    phone = None
    if country is not None and rng.random() < (0.45 if email else 0.9):
        phone = f"{PHONE_PREFIX[country]} {rng.randint(500, 899)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
    city = CITIES[country].pick(rng) if country is not None and rng.random() < 0.92 else None
    birth_date = None
    if rng.random() < 0.55:
        age_days = int((18 + min(67, rng.gammavariate(4, 5))) * 365.25)
        birth_date = datetime.fromtimestamp(now_ts - age_days * DAY - rng.randrange(365) * DAY, UTC).date()
    traffic_source = TRAFFIC_SOURCES.pick(rng)
    campaigns = UTM_CAMPAIGNS.get(traffic_source)
    utm_campaign = rng.choice(campaigns) if campaigns and rng.random() < 0.8 else None
    # An unsubscribe, bounce or complaint ends the e-mail history somewhere in the contact's life.
    email_end = now_ts
    if email_status in {"unsubscribed", "bounced", "complained"}:
        email_end = created + int((now_ts - created) * rng.uniform(0.1, 0.95))
    traits = _Traits(
        created=created,
        favourite="",
        devices=DEVICE_PROFILES.pick(rng),
        traffic_source=traffic_source,
        email_status=email_status,
        email_end=email_end,
    )
    row = [
        f"cust-{index + 1}",
        email,
        first,
        last,
        phone,
        country,
        city,
        gender if rng.random() < 0.65 else None,
        birth_date,
        created,
        email_status,
        traffic_source,
        utm_campaign,
        None,  # attributes, filled once orders are known
    ]
    return row, traits, country, (first, last)


def _order_times(rng: random.Random, created: int, now_ts: int) -> list[int]:
    """Many never buy or buy once; a long tail buys often; some repeat buyers churn and stop."""
    kind = rng.random()
    if kind < 0.35:
        return []
    # Repeat buyers: 2 + a Lomax (shifted Pareto) draw, most buy twice or three times, a few hundreds.
    count = 1 if kind < 0.60 else 2 + min(MAX_ORDERS_PER_CONTACT - 2, int(6 * (rng.paretovariate(1.5) - 1)))
    first = created + int(rng.expovariate(1 / (7 * DAY)))
    if first > now_ts:
        first = created + int(rng.random() * (now_ts - created))
    end = now_ts
    if count > 1 and rng.random() < 0.35:
        end = first + int((now_ts - first) * rng.uniform(0.15, 0.8))
    span = end - first
    # Uniform order statistics give exponential-like gaps between purchases.
    return [first] + sorted(first + int(rng.random() * span) for _ in range(count - 1))


def _pick_product(rng: random.Random, catalog: Catalog, favourite: str) -> int:
    if rng.random() < 0.5:
        return catalog.by_category[favourite].pick(rng)
    return catalog.popularity.pick(rng)


def _order_items(rng: random.Random, catalog: Catalog, favourite: str) -> tuple[tuple[int, int, int], ...]:
    wanted = ITEMS_PER_ORDER.pick(rng)
    chosen: list[int] = []
    for _ in range(wanted * 3):
        product = _pick_product(rng, catalog, favourite)
        if product not in chosen:
            chosen.append(product)
            if len(chosen) == wanted:
                break
    if HERO in chosen and len(chosen) < 4 and rng.random() < 0.3:
        accessory = HERO_ACCESSORIES[0] if rng.random() < 0.6 else HERO_ACCESSORIES[1]
        if accessory not in chosen:
            chosen.append(accessory)
    items = []
    for product in chosen:
        cents = catalog.products[product].price_cents
        if rng.random() < 0.15:
            cents = round(cents * (1 - rng.choice((0.1, 0.15, 0.2, 0.3))))
        items.append((product, QUANTITIES.pick(rng), cents))
    return tuple(items)


def _order_source(rng: random.Random, traits: _Traits) -> str | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.45 and traits.traffic_source not in (None, "other"):
        return traits.traffic_source
    return ORDER_SOURCES.pick(rng)


def _device(rng: random.Random, profile: str) -> str | None:
    roll = rng.random()
    if roll < 0.02:
        return None  # some trackers send no device
    if roll < 0.03:
        return "other"  # smart TVs, consoles
    if profile == "mobile_only":
        return "mobile"
    if profile == "desktop_only":
        return "desktop"
    if profile == "tablet_only":
        return "tablet"
    return CROSS_DEVICES.pick(rng)


def _product_props(catalog: Catalog, product: int) -> tuple[str, str]:
    sku = catalog.products[product].sku
    return f"{SHOP_URL}/p/{sku.lower()}", f'{{"sku": "{sku}"}}'


def _events(rng: random.Random, catalog: Catalog, traits: _Traits, orders: list[tuple], now_ts: int) -> list[tuple]:
    """Skewed per contact (about 20 on average): e-mail history, browsing sessions, checkouts, recent carts."""
    if rng.random() < 0.05:
        return []  # signed up in store or imported, never tracked online
    budget = int(rng.lognormvariate(2.3, 1.1))
    events: list[tuple] = []
    append = events.append
    created = traits.created

    if traits.email_status not in (None, "never_subscribed"):
        open_rate = rng.uniform(0.05, 0.6)
        click_rate = rng.uniform(0.05, 0.35)
        sends_wanted = max(1, round(budget * 0.45 / (1 + open_rate * (1 + click_rate))))
        low = bisect_left(catalog.campaign_times, created)
        high = bisect_right(catalog.campaign_times, traits.email_end)
        if traits.email_status == "bounced":
            sends_wanted = min(sends_wanted, 3)
        picks = range(low, high) if high - low <= sends_wanted else sorted(rng.sample(range(low, high), sends_wanted))
        for pick in picks:
            campaign = catalog.campaigns[pick]
            append(("email_sent", campaign.sent_at, None, None, campaign.name, "{}"))
            if traits.email_status == "bounced" or rng.random() >= open_rate:
                continue
            opened = campaign.sent_at + int(rng.expovariate(1 / (4 * HOUR)))
            if opened > now_ts:
                continue
            device = _device(rng, traits.devices)
            append(("email_open", opened, device, None, campaign.name, "{}"))
            if rng.random() < click_rate:
                url = f"{SHOP_URL}/sale?utm_source=email&utm_campaign={campaign.name}"
                append(("email_click", opened + rng.randint(5, 600), device, url, campaign.name, "{}"))
        ending = {"unsubscribed": "unsubscribe", "bounced": "email_bounce", "complained": "email_complaint"}
        if traits.email_status in ending:
            last_campaign = catalog.campaigns[high - 1].name if high > low else None
            append((ending[traits.email_status], traits.email_end, None, None, last_campaign, "{}"))

    # Browsing sessions, more of them recently (u ** 0.7 leans towards now).
    span = now_ts - created
    while len(events) < budget:
        at = created + int(span * rng.random() ** 0.7)
        device = _device(rng, traits.devices)
        if device == "mobile" and rng.random() < 0.4:
            append(("app_open", at, device, None, None, "{}"))
            at += rng.randint(1, 20)
        append(("page_view", at, device, SHOP_URL + PAGES.pick(rng), None, "{}"))
        viewed = None
        for _ in range(rng.choice((0, 0, 1, 1, 1, 2, 2, 3))):
            at += rng.randint(10, 180)
            viewed = _pick_product(rng, catalog, traits.favourite)
            url, props = _product_props(catalog, viewed)
            append(("product_view", at, device, url, None, props))
        if viewed is not None and rng.random() < 0.15:
            at += rng.randint(10, 120)
            url, props = _product_props(catalog, viewed)
            append(("cart_add", at, device, url, None, props))
            if rng.random() < 0.3:
                append(("checkout_start", at + rng.randint(20, 300), device, f"{SHOP_URL}/checkout", None, "{}"))

    for order in orders:
        if rng.random() < 0.4:
            at = order[1] - rng.randint(60, 1200)
            append(("checkout_start", at, _device(rng, traits.devices), f"{SHOP_URL}/checkout", None, "{}"))

    # Cart abandoners: something put in the cart in the last 48 hours, after the last order.
    if rng.random() < 0.03:
        at = now_ts - rng.randrange(48 * HOUR)
        if not orders or orders[-1][1] < at - 60:
            device = _device(rng, traits.devices)
            product = _pick_product(rng, catalog, traits.favourite)
            url, props = _product_props(catalog, product)
            append(("product_view", at - rng.randint(30, 300), device, url, None, props))
            append(("cart_add", at, device, url, None, props))

    events = [event for event in events if created <= event[1] <= now_ts]
    events.sort(key=_event_time)
    return events


def _event_time(event: tuple) -> int:
    return event[1]


def _tags(rng: random.Random, traits: _Traits, orders_count: int, spent_cents: int) -> tuple[str, ...]:
    tags = []
    if (spent_cents >= 300_000 and rng.random() < 0.5) or rng.random() < 0.004:
        tags.append("vip")
    if traits.email_status == "subscribed" and rng.random() < 0.55:
        tags.append("newsletter")
    if rng.random() < (0.35 if orders_count >= 2 else 0.08):
        tags.append("loyalty_member")
    if rng.random() < 0.05:
        tags.append("student")
    if rng.random() < 0.04:
        tags.append("b2b")
        if rng.random() < 0.35:
            tags.append("wholesale")
    if rng.random() < 0.015:
        tags.append("beta_tester")
    if rng.random() < 0.004:
        tags.append("influencer")
    return tuple(tags)


def _attributes(
    rng: random.Random, traits: _Traits, country: str | None, name: tuple[str, str], tags: tuple[str, ...],
    spent_cents: int,
) -> dict:
    attributes: dict[str, object] = {}
    if rng.random() < 0.7:
        attributes["plan"] = PLANS.pick(rng)
    if rng.random() < 0.4:
        attributes["shoe_size"] = rng.randint(72, 95) / 2  # EU 36 to 47.5
    if "loyalty_member" in tags or (spent_cents and rng.random() < 0.4):
        attributes["loyalty_points"] = spent_cents // 100 + rng.randrange(0, 500, 10)
    if rng.random() < 0.8:
        opted_in = traits.email_status == "subscribed"
        attributes["marketing_opt_in"] = opted_in if rng.random() < 0.95 else not opted_in
    if "b2b" in tags:
        suffix = COMPANY_SUFFIX.get(country, "Ltd")
        attributes["company"] = f"{rng.choice(COMPANY_WORDS)} {name[1]} {suffix}"
    return attributes


def as_datetime(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
