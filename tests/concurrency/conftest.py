"""Servers for the concurrency suite: the tenancy deployments (SQLite; PostgreSQL as a non-owner role under
row-level security), one server process per store shared by the suite's scenarios."""

from tests.tenancy.conftest import deployment  # noqa: F401 - the fixture, parametrised over both stores
