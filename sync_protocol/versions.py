"""Protocol versions and negotiation.

Every request names the protocol version the client speaks (``protocol``). The server
answers in the same version when it supports it, or refuses with
``protocol_unsupported`` naming the range it accepts (``details.supported``).
"""

from __future__ import annotations

from .errors import ProtocolUnsupported, SchemaMismatch, SchemaTooOld

PROTOCOL_VERSION = 1
MIN_PROTOCOL_VERSION = 1
MAX_PROTOCOL_VERSION = 1


def negotiate(client_version: int) -> int:
    """The version to answer in, or :class:`ProtocolUnsupported`."""
    if MIN_PROTOCOL_VERSION <= client_version <= MAX_PROTOCOL_VERSION:
        return client_version
    raise ProtocolUnsupported(
        f"protocol version {client_version} is not supported; this server speaks "
        f"{MIN_PROTOCOL_VERSION}..{MAX_PROTOCOL_VERSION}",
        details={
            "requested": client_version,
            "supported": {"min": MIN_PROTOCOL_VERSION, "max": MAX_PROTOCOL_VERSION},
        },
    )


def check_schema_version(client_version: int, *, current: int, minimum: int) -> None:
    """Refuse a client whose entity schema is older than the server still serves."""
    if client_version < minimum:
        raise SchemaTooOld(
            f"the app's data schema (v{client_version}) is too old; update the app "
            f"(this server needs v{minimum} or later)",
            details={"client": client_version, "minimum": minimum, "current": current},
        )


def check_schema_name(client_schema: str | None, *, served: str) -> None:
    """Refuse a client whose store holds another app's schema (an inspections app
    pointed at a CRM server): nothing of the one may land in the other. ``None`` (a
    client that does not say) is served."""
    if client_schema is not None and client_schema != served:
        raise SchemaMismatch(
            f"this server serves the schema {served!r}; the app's data is {client_schema!r}",
            details={"client": client_schema, "served": served},
        )
