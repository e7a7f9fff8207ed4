"""SendGrid's Event Webhook verification key: base64 DER (as SendGrid's settings show it) or
PEM, an ECDSA P-256 public key."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key


def load_ec_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key ``text`` holds; ``ValueError`` says why it is not one."""
    value = text.strip()
    try:
        if value.startswith("-----BEGIN"):
            key = load_pem_public_key(value.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode(value, validate=True))
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("event_public_key is not a public key (base64 DER or PEM)") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("event_public_key must be an ECDSA P-256 public key")
    return key
