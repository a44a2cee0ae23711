"""Asking a Work Queue manager how many workers it has (for the service's metrics)."""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
from pathlib import Path


def workqueue_workers(port: int, password_file: Path | None, timeout_s: float = 3.0) -> int:
    """Workers connected to the Work Queue manager on ``port`` (0 when no manager answers).

    This asks the manager what ``work_queue_status -W localhost PORT`` asks (``worker_status``),
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
                    return 0
                my_key = secrets.token_hex(32).encode()
                send(my_key)
                peer_key = link.readline().rstrip(b"\n")
                send(hashlib.sha1(password + b" " + peer_key).hexdigest().encode())
                peer_ok = link.readline().rstrip(b"\n") == hashlib.sha1(password + b" " + my_key).hexdigest().encode()
                send(b"ok" if peer_ok else b"failure")
                if not peer_ok or link.readline().strip() != b"ok":
                    return 0
            send(b"worker_status")
            workers = json.loads(link.read(4 * 1024 * 1024) or b"[]")
    except (OSError, ValueError):
        return 0
    return len(workers) if isinstance(workers, list) else 0
