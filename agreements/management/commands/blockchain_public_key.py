"""`manage.py blockchain_public_key`: the public half of our configured signing key(s), to register.

The blockchain service verifies our outbound webhooks with it. Prints one PEM block per private key
in BLOCKCHAIN_APPLICATION_SECRET_KEY (two while ours rotates). Never prints the private key.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agreements.signing import load_private_keys, public_key_pem


class Command(BaseCommand):
    help = "Print the public key(s) of BLOCKCHAIN_APPLICATION_SECRET_KEY, to register with the blockchain service."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            keys = load_private_keys(settings.BLOCKCHAIN_APPLICATION_SECRET_KEY)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for key in keys:
            self.stdout.write(public_key_pem(key).strip())
