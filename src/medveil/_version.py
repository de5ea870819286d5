"""Single source of the package version (pyproject reads the same number)."""

__version__ = "0.1.0"
