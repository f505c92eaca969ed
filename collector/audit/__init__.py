"""Audit: queries and reports over the consent ledger, decisions, identity
history and erasures, shared by the CLI (`consentry audit`) and the console.

``ledger``  records by subject and time, verification, merges, conflicts, erasures
``why``     why a message was or was not forwarded to a destination
``report``  the text, CSV and JSON renderings of the above
"""
