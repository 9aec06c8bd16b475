"""The Support group, with exactly the permissions the support person needs: see
accounts and tickets, and press each ticket button. Nothing else (no editing rows,
no deleting, no other apps)."""
from django.db import migrations

PERMISSIONS = {
    ("accounts", "user"): {"view_user": "Can view user"},
    ("support", "ticket"): {
        "view_ticket": "Can view ticket",
        "rerun_provisioning": "Can re-run provisioning now",
        "resend_verification": "Can resend the verification email",
        "correct_email": "Can correct an account's email address",
        "mark_verified": "Can mark an email verified after confirming identity by phone",
        "issue_signin_code": "Can issue a one-time sign-in code",
        "reply": "Can reply to the person",
        "resolve": "Can resolve a ticket",
    },
}


def create_support_group(apps, schema_editor):
    """Permissions are normally created after migrations (post_migrate); create the
    ones we need here, so the group is complete from the first migrate."""
    using = schema_editor.connection.alias if schema_editor else "default"
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    group, _ = Group.objects.using(using).get_or_create(name="Support")
    wanted = []
    for (app_label, model), codenames in PERMISSIONS.items():
        content_type, _ = ContentType.objects.using(using).get_or_create(app_label=app_label, model=model)
        for codename, name in codenames.items():
            permission, _ = Permission.objects.using(using).get_or_create(
                content_type=content_type, codename=codename, defaults={"name": name})
            wanted.append(permission)
    group.permissions.set(wanted)


def remove_support_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Support").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0001_initial"),
        ("accounts", "0004_signincode"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_support_group, remove_support_group)]
