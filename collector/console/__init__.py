"""The compliance console at ``/console``: server-rendered pages (Starlette +
Jinja2), no build step, no CDN, no JavaScript needed.

- `session`: signed HttpOnly SameSite=Strict session cookies with an idle
  timeout (itsdangerous), CSRF tokens, rate-limited logins (limits).
- `pages`: the routes; every page checks the role matrix, and person-level
  pages write the access log like the admin API.
"""
