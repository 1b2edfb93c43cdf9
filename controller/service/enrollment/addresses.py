"""Who is asking: the peer's address, or behind a trusted proxy the client it forwards for.

X-Forwarded-For is only believed when the connection comes from a configured proxy range (the
internal load balancer's subnets); anyone else could write any address into it. Proxies append,
so the chain is read from the right, skipping trusted proxies, and the first address that is not
a trusted proxy is the client (an address a client wrote itself sits further left and is never
reached).

A known WorkSpace is never a proxy, whatever the ranges say: an operator who trusts the whole
subnet the load balancer shares with WorkSpaces would otherwise let each of them write another's
address into the header (connecting directly, or through the balancer, which appends the real
one). Such a hop ends the walk as the client (before the first read of the WorkSpaces, every
address may be one). An address in a trusted range that the last read did not see (a WorkSpace
created since) still counts as a proxy: trusted ranges should hold the load balancer's only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class BadForwardedFor(ValueError):
    """A trusted proxy sent an X-Forwarded-For this module cannot read."""


def parse_networks(texts: Sequence[str]) -> tuple[Network, ...]:
    """``--enroll-trusted-proxy`` values (CIDRs or single addresses) as networks."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP network or address: {text!r}") from None
    return tuple(networks)


def _address(text: str) -> Address:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(
    peer: str,
    forwarded_for: Sequence[str],
    proxies: Sequence[Network],
    is_workspace: Callable[[str], bool] = lambda address: False,
) -> str:
    """The caller's address as text.

    ``forwarded_for`` holds every X-Forwarded-For header line in order (a proxy may add its own
    line instead of appending); ``is_workspace`` tells a known WorkSpace's address, which is
    never taken for a proxy. Raises BadForwardedFor when a trusted proxy forwards nonsense.
    """

    def proxy(address: Address) -> bool:
        return _trusted(address, proxies) and not is_workspace(str(address))

    address = _address(peer)
    if not proxy(address):
        return str(address)
    chain = [item for line in forwarded_for for item in line.split(",") if item.strip()]
    for item in reversed(chain):
        try:
            hop = _address(item)
        except ValueError:
            raise BadForwardedFor(f"X-Forwarded-For entry {item.strip()[:64]!r}") from None
        if not proxy(hop):
            return str(hop)
        address = hop
    return str(address)  # every hop is a proxy: the request came from the proxies themselves
