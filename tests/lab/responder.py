"""A scripted STUN/TURN responder of our own, for the codes coturn cannot produce.

It answers each request with whatever its script returns, from a thread, on a UDP port of the
lab network. Replies are encoded with aioice's wire-format helpers (the same library the
gatherer reads with) or given as raw bytes for malformed ones.
"""

from __future__ import annotations

from collections.abc import Callable

from aioice import stun

from tests.lab.udpserver import UdpThreadServer

Script = Callable[[stun.Message, tuple[str, int]], bytes | None]


def error_response(request: stun.Message, code: int, reason: str,
                   **attributes: object) -> bytes:
    reply = stun.Message(message_method=request.message_method,
                         message_class=stun.Class.ERROR,
                         transaction_id=request.transaction_id)
    reply.attributes["ERROR-CODE"] = (code, reason)
    for name, value in attributes.items():
        reply.attributes[name.replace("_", "-")] = value
    return bytes(reply)


def success_response(request: stun.Message, **attributes: object) -> bytes:
    reply = stun.Message(message_method=request.message_method,
                         message_class=stun.Class.RESPONSE,
                         transaction_id=request.transaction_id)
    for name, value in attributes.items():
        reply.attributes[name.replace("_", "-")] = value
    return bytes(reply)


class ScriptedResponder:
    def __init__(self, ip: str, script: Script) -> None:
        self.ip = ip
        self.script = script
        self.requests: list[stun.Message] = []
        self._server = UdpThreadServer(ip, 0, self._answer, "lab-responder")
        self.port = self._server.port

    def _answer(self, data: bytes, peer: tuple[str, int]) -> bytes | None:
        try:
            request = stun.parse_message(data)
        except ValueError:
            return None
        self.requests.append(request)
        return self.script(request, peer)

    def close(self) -> None:
        self._server.close()
