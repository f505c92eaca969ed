"""The embedded SQLite adapters: the only modules that speak SQL to Consentry's
own database file."""
