"""`manage.py generate_blockchain_application`: a new application id and RSA key pair as env lines.

Like the blockchain service's "generate application" script: register the id and public key with
the blockchain service and put the printed lines in the environment. The private key is printed
once, to stdout only; it is never logged or stored.
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
    help = "Generate a blockchain application id and RSA key pair, printed as .env lines."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--bits", type=int, default=3072, choices=[2048, 3072, 4096], help="RSA key size")

    def handle(self, *args: Any, **options: Any) -> None:
        private_pem, public_pem = generate_key_pair(options["bits"])
        self.stdout.write(f"BLOCKCHAIN_APPLICATION_ID={uuid.uuid4()}")
        self.stdout.write(f'BLOCKCHAIN_APPLICATION_SECRET_KEY="{_one_line(private_pem)}"')
        self.stdout.write(f'BLOCKCHAIN_APPLICATION_PUBLIC_KEY="{_one_line(public_pem)}"')
