"""One module per kind. Each calls ``register_kind`` at import; the registry imports them all."""
