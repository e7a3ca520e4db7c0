"""Probe a host from inside a lab client namespace and print the outcome as JSON.

Run as `ip netns exec NETNS python3 netprobe.py tcp HOST PORT [--timeout S]`.
A firewall test needs three outcomes told apart, not two: `open` (the
handshake completed; the banner, if the service sends one, is included),
`refused` (a RST: the port is reachable but nothing listens, or a reject rule)
and `timeout` (no answer: dropped).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys


def probe_tcp(host: str, port: int, timeout: float, read_banner: bool) -> dict:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except ConnectionRefusedError:
            return {"state": "refused"}
        except (socket.timeout, TimeoutError):
            return {"state": "timeout"}
        except OSError as error:  # no route, host unreachable (ICMP reject)
            return {"state": "unreachable", "error": error.strerror}
        banner = ""
        if read_banner:
            try:
                banner = sock.recv(512).decode("utf-8", "replace").strip()
            except (socket.timeout, TimeoutError, OSError):
                banner = ""
        return {"state": "open", "banner": banner}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    tcp = sub.add_parser("tcp")
    tcp.add_argument("host")
    tcp.add_argument("port", type=int)
    tcp.add_argument("--timeout", type=float, default=2.0)
    tcp.add_argument("--no-banner", action="store_true")
    args = parser.parse_args()
    result = probe_tcp(args.host, args.port, args.timeout, not args.no_banner)
    result.update({"host": args.host, "port": args.port})
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
