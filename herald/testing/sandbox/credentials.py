"""The sandbox providers' default credentials, in one place (the providers check them, the
call-backs sign with them)."""

from __future__ import annotations

import base64

#: The channel access token the sandbox accepts.
DEFAULT_LINE_TOKEN = "sandbox-line-channel-access-token"
#: The auth token the sandbox accepts (with any ``AC`` + 32 hex account sid in the path).
DEFAULT_TWILIO_AUTH_TOKEN = "sandbox-twilio-auth-token-0123456789"
DEFAULT_MESSENGER_TOKEN = "EAAGsandboxMessengerPageAccessToken0123"
DEFAULT_INSTAGRAM_TOKEN = "IGQVsandboxInstagramAccessToken0123456"
#: The bot auth token the sandbox accepts.
DEFAULT_VIBER_TOKEN = "4453b6ac12345678-e02c5f12174805f9-9a1fca8d05f5e2a5"
#: A SendGrid-shaped API key the sandbox accepts by default.
DEFAULT_SENDGRID_KEY = "SG.sandbox-key-id.herald-sandbox-secret"
#: The example token of Telegram's own documentation.
DEFAULT_TELEGRAM_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
DEFAULT_WHATSAPP_TOKEN = "EAAGsandboxWhatsAppCloudApiToken0123456789"
#: A fixed Standard Webhooks secret (``whsec_`` + base64 key), so demos can be configured.
DEFAULT_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"herald-sandbox-webhook-key-32b!!").decode()
