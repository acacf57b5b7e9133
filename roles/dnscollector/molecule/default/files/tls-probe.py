#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Connect to the server's TLS front as a sensor would; exit 0 if the
connection is admitted (still open after a few seconds), 1 if refused.

usage: tls-probe.py HOST PORT CA_FILE [CERT_FILE KEY_FILE]
"""

import socket
import ssl
import sys


def main() -> int:
    host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ctx = ssl.create_default_context(cafile=ca)
    if len(sys.argv) > 5:
        ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    with socket.create_connection((host, port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.settimeout(2)
                data = tls.recv(1)
                print(f"refused: server closed the connection ({data!r})")
                return 1
        except TimeoutError:
            print("admitted: connection open")
            return 0
        except (ssl.SSLError, ConnectionResetError) as exc:
            print(f"refused: {exc}")
            return 1


if __name__ == "__main__":
    sys.exit(main())
