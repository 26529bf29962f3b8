"""Load balancing: every algorithm worth knowing, raced side by side on the same seeded traffic."""
