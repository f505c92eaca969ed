"""Audit: queries and reports over the consent ledger, decisions, delivery
outcomes, identity history and erasures, shared by the CLI (`consentry
audit`) and the console.

``ledger``   records by subject and time, verification, a person's history
             (merges, refused links, erasures)
``why``      why a message was or was not forwarded, and its final outcome
``witness``  ledger checkpoints copied outside the database, and the check
``report``   the text, CSV and JSON renderings of the above
"""
