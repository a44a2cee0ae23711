"""Asking a Work Queue manager how it stands: its workers and tasks (for the service's metrics)."""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
from pathlib import Path


def workqueue_status(port: int, password_file: Path | None, timeout_s: float = 3.0) -> dict:
    """The ``queue_status`` of the Work Queue manager on ``port``; {} when no manager answers.

    Among its keys (CCTools 8, work_queue.c ``queue_status``): ``workers_connected``,
    ``workers_busy``, ``workers_lost`` (since the manager started), ``tasks_waiting``,
    ``tasks_running``.

    This asks the manager what ``work_queue_status localhost PORT`` asks (``queue_status``),
    but first answers its password challenge (CCTools' ``link_auth_password``: each side sends
    a random key and proves it holds the password with SHA1(password + " " + key)), which
    Debian's work_queue_status 8.0 cannot do; our managers always run with a password.
    """
    try:
        password = Path(password_file).read_bytes() if password_file else None
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock, \
                sock.makefile("rwb") as link:
            def send(line: bytes) -> None:
                link.write(line + b"\n")
                link.flush()

            if password is not None:
                ident = b"auth password sha1"
                send(ident)
                if link.readline().strip() != ident:
                    return {}
                my_key = secrets.token_hex(32).encode()
                send(my_key)
                peer_key = link.readline().rstrip(b"\n")
                send(hashlib.sha1(password + b" " + peer_key).hexdigest().encode())
                peer_ok = link.readline().rstrip(b"\n") == hashlib.sha1(password + b" " + my_key).hexdigest().encode()
                send(b"ok" if peer_ok else b"failure")
                if not peer_ok or link.readline().strip() != b"ok":
                    return {}
            send(b"queue_status")
            status = json.loads(link.read(4 * 1024 * 1024) or b"[]")
    except (OSError, ValueError):
        return {}
    return status[0] if isinstance(status, list) and status and isinstance(status[0], dict) else {}
