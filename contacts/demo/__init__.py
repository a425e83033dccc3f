"""Demo data: a believable shop, generated deterministically and loaded in bulk.

`generator` makes the rows as plain tuples from one `random.Random(seed)` (no
database); `loader` writes them (PostgreSQL COPY, SQLite bulk_create);
`setup` is the quick start's idempotent demo setup.
"""
