"""Provider webhooks (docs/webhooks.md): ``herald webhooks`` verifies each provider's calls,
and records inbound messages (the interaction record and ``herald:inbound``) and delivery
statuses of the messages Herald sent (``herald:statuses``).

``model`` what the steps pass on; ``verify`` one check per provider; ``parse`` one reader
per provider; ``record`` the Redis side; ``app`` the ASGI app; ``server`` running it.
"""

from herald.webhooks.app import create_app

__all__ = ["create_app"]
