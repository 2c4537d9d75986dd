"""Join the listener's and the submission lane's first migrations (built on separate branches)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("chain", "0001_event_listener"),
        ("chain", "0001_submission_lane"),
    ]

    operations: list[migrations.operations.base.Operation] = []
