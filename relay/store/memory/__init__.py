"""An in-memory store: the fake the unit tests run the use cases against."""
