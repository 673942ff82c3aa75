"""Repositories: the only modules that build SQL. Functions take an AsyncSession and never commit."""
