"""`manage.py create_operator NAME`: a staff user with an API token, printed once.

Read-only staff by default; `--approver` puts the user in the approvers group (may change things,
config/roles.py); `--superuser` grants everything, Django's own pages included.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from config.roles import APPROVERS_GROUP, is_approver


class Command(BaseCommand):
    help = "Create (or update) a staff operator with an API token and print the token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--approver",
            action="store_true",
            help=f"Add to the '{APPROVERS_GROUP}' group: may create, execute, retry and cancel distributions, "
            "import assets, withdraw and make every other change (without it: read-only).",
        )
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
            if options["approver"]:
                # get_or_create: the data migration made it, but an operator may have deleted it
                user.groups.add(Group.objects.get_or_create(name=APPROVERS_GROUP)[0])
            token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(f"username: {user.get_username()} ({'created' if created else 'updated'})")
        self.stdout.write(f"role: {'approver' if is_approver(user) else 'read-only'}")
        if password is not None:
            self.stdout.write(f"password: {password}")
        self.stdout.write(f"api token: {token.key}")
