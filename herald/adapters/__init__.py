"""Channel adapters: one module per provider, chosen by channel type."""
