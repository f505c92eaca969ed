"""Who may do what: roles, permissions, principals (tokens and console users).

- `roles`: the role-by-permission matrix (pure).
- `principals`: tokens and users from configuration, checked in constant time
  (tokens) or with argon2 (passwords).
"""
