"""Several servers behind one Connection: target strings and round-robin balancing."""

from __future__ import annotations

import ipaddress
import json
import socket

__all__ = ["ROUND_ROBIN", "channel_target"]

# gRPC's round_robin policy: one subchannel per address, calls spread over the ready
# ones; a server that goes down is skipped until it is back.
ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def _split(entry: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    host, sep, port = entry.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"target {entry!r}: each of several targets is host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _addresses(host: str, port: int) -> list[str]:
    """``host``'s addresses as gRPC writes them (names resolved now, IPv4 first)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise ValueError(f"target {host}:{port}: cannot resolve the name ({error})") from None
        found = sorted({(family, info[0]) for family, _, _, _, info in infos})
        ips = [ipaddress.ip_address(a) for _, a in found]
        if not ips:
            raise ValueError(f"target {host}:{port}: the name resolves to no address") from None
    else:
        ips = [ip]
    return [f"{a}:{port}" if a.version == 4 else f"[{a}]:{port}" for a in ips]


def channel_target(target: str) -> str:
    """The gRPC target of ``target``.

    A comma-separated list of ``host:port`` (e.g. ``OPTSERVE_TARGET=10.0.0.5:50051,
    10.0.0.6:50051``) becomes one ``ipv4:`` (or ``ipv6:``) target of every address, names
    resolved once here; for names whose addresses change, give ``dns:///name:port``
    instead, which gRPC re-resolves. Anything else (``host:port``, ``dns:///...``,
    ``ipv4:...``, ``unix:...``) is gRPC's own syntax and passes unchanged.
    """
    if "," not in target or "://" in target or target.startswith(("ipv4:", "ipv6:", "unix:")):
        return target
    entries = [e.strip() for e in target.split(",") if e.strip()]
    if not entries:
        raise ValueError(f"target {target!r} names no server")
    resolved = [_addresses(host, port) for host, port in [_split(e) for e in entries]]
    # one scheme per gRPC target: IPv4 when every server has an IPv4 address, else IPv6
    for version, scheme in ((4, "ipv4:"), (6, "ipv6:")):
        chosen = [
            [a for a in addresses if a.startswith("[") == (version == 6)] for addresses in resolved
        ]
        if all(chosen):
            return scheme + ",".join(dict.fromkeys(a for addresses in chosen for a in addresses))
    raise ValueError(
        f"target {target!r} mixes servers reachable only over IPv4 with servers reachable"
        " only over IPv6; give a dns:/// name instead"
    )
