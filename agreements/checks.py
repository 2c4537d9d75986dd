"""System checks of the webhook key model (`manage.py check`, run at every start and deploy).

Our key pair signs outbound only; inbound messages are verified with the blockchain service's key.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from agreements import signing
from agreements.services.inbound import service_public_keys_pem


@register("agreements")
def check_webhook_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if os.environ.get("BLOCKCHAIN_APPLICATION_PUBLIC_KEY"):
        messages.append(
            Warning(
                "BLOCKCHAIN_APPLICATION_PUBLIC_KEY is set but no longer read.",
                hint="Inbound webhooks are verified with the blockchain service's key: set "
                "BLOCKCHAIN_SERVICE_PUBLIC_KEY to it, and remove BLOCKCHAIN_APPLICATION_PUBLIC_KEY.",
                id="agreements.W001",
            )
        )
    service_pem = service_public_keys_pem()
    if service_pem and settings.BLOCKCHAIN_APPLICATION_SECRET_KEY:
        try:
            theirs = {signing.public_key_pem(key) for key in signing.load_public_keys(service_pem)}
            ours = {
                signing.public_key_pem(key)
                for key in signing.load_private_keys(settings.BLOCKCHAIN_APPLICATION_SECRET_KEY)
            }
        except ValueError:
            return messages  # an unusable key is refused (and logged) where it is used
        if theirs & ours:
            messages.append(
                Error(
                    "BLOCKCHAIN_SERVICE_PUBLIC_KEY holds our own public key.",
                    hint="It must hold the blockchain service's public key; ours only signs what we send "
                    "(a message signed with it is refused inbound).",
                    id="agreements.E001",
                )
            )
    return messages
