"""The `approvers` group: operators in it may change things (config/roles.py); other staff only read."""

from django.db import migrations

APPROVERS_GROUP = "approvers"  # config.roles.APPROVERS_GROUP, frozen here as migrations must be


def create_approvers_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=APPROVERS_GROUP)


def delete_approvers_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=APPROVERS_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("config", "0001_idempotency_key"),
    ]

    operations = [migrations.RunPython(create_approvers_group, delete_approvers_group)]
