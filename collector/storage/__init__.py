"""Storage: protocols the rest of the collector programs against (``ports``)
and the adapters that speak SQL to Consentry's own database (``sqlite/``)."""
