"""The config models: one pydantic model per section of nebari-config.yaml."""
