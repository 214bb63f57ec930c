"""What this machine has: its interface addresses, and name resolution bounded in time."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading

import ifaddr


def host_addresses() -> list[str]:
    """Every non-loopback IPv4 address and every global-scope IPv6 address, IPv6 first
    (as browsers prefer it), each once."""
    v4: list[str] = []
    v6: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                if not ipaddress.IPv4Address(ip.ip).is_loopback and ip.ip not in v4:
                    v4.append(ip.ip)
                continue
            address, _flowinfo, scope_id = ip.ip
            parsed = ipaddress.IPv6Address(address.split("%")[0])
            if (scope_id == 0 and not parsed.is_loopback and not parsed.is_link_local
                    and parsed.ipv4_mapped is None and str(parsed) not in v6):
                v6.append(str(parsed))
    return v6 + v4


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class ResolutionError(Exception):
    pass


async def resolve(host: str, port: int, timeout: float) -> list[str]:
    """All A and AAAA addresses of `host`, IPv6 first, without duplicates.

    getaddrinfo cannot be cancelled, so it runs in a daemon thread that is abandoned when the
    budget runs out: a hung resolver never delays the verdict or the process exit."""
    if is_ip_literal(host):
        return [host]
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[str]] = loop.create_future()

    def settle(result: list[str] | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])

    def post(result: list[str] | None, error: BaseException | None) -> None:
        # RuntimeError: the loop is gone, nobody waits for this answer any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            error = ResolutionError(exc.strerror or str(exc))
            post(None, error)
            return
        except Exception as exc:
            post(None, ResolutionError(str(exc)))
            return
        addresses: list[str] = []
        for family, _type, _proto, _canon, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                address = str(sockaddr[0]).split("%")[0]
                if address not in addresses:
                    addresses.append(address)
        addresses.sort(key=lambda a: ":" not in a)
        post(addresses, None)

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        raise ResolutionError(f"no answer within {timeout:.1f} s") from None
