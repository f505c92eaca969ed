"""Data quality: tracking plans that define what each source may send.

- `plan`: a tracking plan file (YAML or JSON) decoded and its JSON Schemas
  (draft-07) compiled once.
- `validate`: one message checked against a plan → violations with JSON paths
  and the action to take (pure).
- `lint`: naming standards a plan can switch on (Segment's "Object Action").
- `infer`: a draft plan from observed events, for a human to edit.

Violation kinds are named as Segment Protocols and RudderStack name them:
``unplanned_event``, ``required_missing``, ``wrong_type``,
``unplanned_property``, ``format``, ``naming``.
"""
