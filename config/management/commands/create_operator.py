"""`manage.py create_operator NAME`: a staff user with an API token, printed once."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create (or update) a staff operator with an API token and print the token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--superuser", action="store_true", help="Also grant every admin permission.")
        parser.add_argument(
            "--password",
            default=None,
            help="Admin login password; a random one is generated and printed when omitted.",
        )
        parser.add_argument(
            "--keep-password",
            action="store_true",
            help="Leave an existing user's password as it is (for repeated local runs).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            user, created = user_model.objects.get_or_create(
                username=options["username"], defaults={"email": options["email"]}
            )
            user.is_staff = True
            user.is_active = True
            if options["superuser"]:
                user.is_superuser = True
            password = None
            if created or not options["keep_password"]:
                password = options["password"] or secrets.token_urlsafe(12)
                user.set_password(password)
            user.save()
            token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(f"username: {user.get_username()} ({'created' if created else 'updated'})")
        if password is not None:
            self.stdout.write(f"password: {password}")
        self.stdout.write(f"api token: {token.key}")
