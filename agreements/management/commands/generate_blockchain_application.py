"""`manage.py generate_blockchain_application`: a new application id and RSA key pair as env lines.

Like the blockchain service's "generate application" script: put the printed env lines in our
environment, and register the id and the printed public key with the blockchain service (it verifies
our outbound webhooks with it). The private key is printed once, to stdout only; it is never logged
or stored. The service's own public key (BLOCKCHAIN_SERVICE_PUBLIC_KEY) comes from the service.
"""

from __future__ import annotations

import uuid
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from agreements.signing import generate_key_pair


def _one_line(pem: str) -> str:
    return pem.strip().replace("\n", "\\n")


class Command(BaseCommand):
    help = "Generate a blockchain application id and RSA key pair: .env lines, and the public key to register."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--bits", type=int, default=3072, choices=[2048, 3072, 4096], help="RSA key size")

    def handle(self, *args: Any, **options: Any) -> None:
        private_pem, public_pem = generate_key_pair(options["bits"])
        self.stdout.write(f"BLOCKCHAIN_APPLICATION_ID={uuid.uuid4()}")
        self.stdout.write(f'BLOCKCHAIN_APPLICATION_SECRET_KEY="{_one_line(private_pem)}"')
        # Commented, so the output can go into a .env file as it is: this app never reads it.
        self.stdout.write("# Register the id above and this public key with the blockchain service")
        self.stdout.write("# (`manage.py blockchain_public_key` prints it again from the secret key):")
        for line in public_pem.strip().splitlines():
            self.stdout.write(f"# {line}")
