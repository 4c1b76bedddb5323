"""Proof of possession for deduplicated attachments (pure; both sides use it).

Blobs are stored once per content (named by SHA-256), but knowing a file's SHA-256 is
not owning the file: anyone who learned a photo's hash could otherwise register an
attachment with it, be told "complete" at once, and download someone else's photo.
So when the server already holds an announced content it does not link it straight
away: it hands out a random ``proof_nonce`` with the registration, and completes the
attachment without an upload only when the device sends ``HMAC-SHA256(key=nonce,
message=the whole content)`` — which takes the bytes, not their hash, to compute.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PROOF_ALGORITHM = "hmac-sha256"


def possession_proof(nonce: str, content: Iterable[bytes]) -> str:
    """The proof for ``content`` (in pieces, in order) under the server's hex ``nonce``."""
    mac = hmac.new(bytes.fromhex(nonce), digestmod=hashlib.sha256)
    for piece in content:
        mac.update(piece)
    return mac.hexdigest()


def proof_matches(nonce: str, content: Iterable[bytes], proof: str) -> bool:
    """Constant-time check of a device's ``proof``."""
    return hmac.compare_digest(possession_proof(nonce, content), proof.lower())
