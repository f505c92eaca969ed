"""Consentry's own database on PostgreSQL: several ``consentry serve``
replicas on one shared database (issue 18). The same ports as
``collector.storage.sqlite``; all SQL for PostgreSQL lives in this package."""
