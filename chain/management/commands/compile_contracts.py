"""`manage.py compile_contracts [--check]`: rebuild (or check) the reference contracts' artifacts."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain.contracts.compile import BASE_DIR, compile_contracts, drifted, write_artifacts


class Command(BaseCommand):
    help = "Compile chain/contracts/*.sol with the pinned solc and write chain/contracts/build/*.json."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="Only check that the committed artifacts match.")

    def handle(self, *args: Any, **options: Any) -> None:
        artifacts = compile_contracts()
        if options["check"]:
            changed = drifted(artifacts)
            if changed:
                raise CommandError(f"artifacts differ from the sources: {', '.join(changed)}")
            self.stdout.write("artifacts match the sources")
            return
        for path in write_artifacts(artifacts):
            self.stdout.write(f"wrote {path.relative_to(BASE_DIR)}")
