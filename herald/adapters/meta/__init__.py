"""Meta's channels: the Graph API's shared answer reader (:mod:`~herald.adapters.meta.graph`),
WhatsApp Cloud API, and the Send API of Messenger and Instagram."""
