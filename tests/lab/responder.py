"""A scripted STUN/TURN responder of our own, for the codes coturn cannot produce.

It answers each request with whatever its script returns, from a thread, on a UDP port of the
lab network. Replies are encoded with aioice's wire-format helpers (the same library the
gatherer reads with) or given as raw bytes for malformed ones.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from aioice import stun

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
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.ip = ip
        self.script = script
        self.requests: list[stun.Message] = []
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.bind((ip, 0))
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="lab-responder", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                request = stun.parse_message(data)
            except ValueError:
                continue
            self.requests.append(request)
            reply = self.script(request, (str(peer[0]), int(peer[1])))
            if reply is not None:
                self._sock.sendto(reply, peer)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=1)
        self._sock.close()
