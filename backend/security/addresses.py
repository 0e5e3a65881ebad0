"""The client's address, for throttling, lockout and the audit trail.

`X-Forwarded-For` is anyone's to write, so it is read only when the request comes from a proxy
the deployment declares (`FORWARDED_ALLOW_IPS`); then the client is the right-most address in it
that is not itself one of those proxies. With no proxy declared the header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(entries: Iterable[str]) -> tuple[IpNetwork, ...] | None:
    """The declared proxies as networks; None stands for "*" (every peer is a proxy)."""
    networks: list[IpNetwork] = []
    for entry in entries:
        if entry.strip() == "*":
            return None
        networks.append(ipaddress.ip_network(entry.strip(), strict=False))
    return tuple(networks)


def _address(text: str) -> str | None:
    candidate = text.strip()
    if candidate.startswith("[") and "]" in candidate:  # [v6]:port
        candidate = candidate[1:candidate.index("]")]
    elif candidate.count(":") == 1:  # v4:port
        candidate = candidate.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def _is_trusted(address: str, networks: tuple[IpNetwork, ...] | None) -> bool:
    if networks is None:
        return True
    parsed = ipaddress.ip_address(address)
    return any(parsed in network for network in networks)


def client_address(peer: str | None, forwarded_for: Sequence[str],
                   networks: tuple[IpNetwork, ...] | None) -> str | None:
    """The client of a request whose direct peer is `peer` and whose `X-Forwarded-For`
    headers are `forwarded_for` (in order)."""
    direct = _address(peer) if peer else None
    if direct is None or networks == () or not _is_trusted(direct, networks):
        return direct
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # A malformed entry: nothing left of it can be believed, so the last proxy is.
            return direct
        if not _is_trusted(address, networks):
            return address
        direct = address
    return direct
