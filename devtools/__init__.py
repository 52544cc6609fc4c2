"""Development tools: the local Functions host, the local OpenID issuer, the local-run setup and the embedded
PostgreSQL. Nothing here is deployed (`.funcignore` excludes the whole folder) and nothing in `shared/` or
`function_app.py` imports it (tests/test_deployment.py checks both)."""
