"""Prevention: the token-provenance guard an API gateway calls before serving a request.

A token passes only when a login, refresh, SSO, partner OAuth or service issuance
recorded it in the issuance ledger, on top of the usual signature, key and
lifetime checks. Modules: `check` (the rules), `ledger` (Redis), `keyset` (JWKS),
`adapters` (Envoy ext_authz, nginx auth_request), `http_app` (the service),
`middleware` (ASGI/WSGI), `spool` and `events` (token_denied events for ingest),
`loader` (filling the ledger from events), `config` (guard.yaml).
"""
