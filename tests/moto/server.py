"""Runs moto's server (the local ECR endpoint for ecr-operator's tests) on 127.0.0.1, with the
extensions in ecr_replication.py (multi-rule replication configurations),
ecr_pull_through_cache.py (pull-through cache rules), ecr_creation_templates.py (repository
creation templates), ecr_registry_settings.py (account settings, pull-time update exclusions,
signing), ecr_images.py (DescribeImages paged, sized and with scan summaries) and ecr_public.py
(an ECR Public service, which moto lacks); see their headers.

Usage: python server.py PORT

Prints "READY <port>" once it serves, and shuts down when its standard input closes, so a test
process that dies (even by SIGKILL) leaves no stray server behind.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ecr_creation_templates  # noqa: E402
import ecr_public  # noqa: E402
import ecr_images  # noqa: E402
import ecr_pull_through_cache  # noqa: E402
import ecr_registry_settings  # noqa: E402
import ecr_replication  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402


def main() -> int:
    ecr_replication.install()
    ecr_pull_through_cache.install()
    ecr_creation_templates.install()
    ecr_registry_settings.install()
    ecr_public.install()
    ecr_images.install()
    port = int(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
