"""Signing-key and token hygiene: `breachwatch keys audit`.

Modules: `inventory` (JWKS + owners file + key events), `lifecycle` (who left),
`token_stats` (what each key signed, from the store), `secret_scan` (private keys
lying in folders and git history), `audit` (the findings), `report` (Markdown).
"""
