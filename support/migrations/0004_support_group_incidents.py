"""The Support group may see incidents (read-only, like everything in the console)."""
from django.db import migrations


def grant_view_incident(apps, schema_editor):
    using = schema_editor.connection.alias if schema_editor else "default"
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    group = Group.objects.using(using).filter(name="Support").first()
    if group is None:
        return
    content_type, _ = ContentType.objects.using(using).get_or_create(app_label="support", model="incident")
    permission, _ = Permission.objects.using(using).get_or_create(
        content_type=content_type, codename="view_incident", defaults={"name": "Can view incident"})
    group.permissions.add(permission)


def revoke_view_incident(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name="Support"):
        group.permissions.remove(*Permission.objects.filter(codename="view_incident",
                                                            content_type__app_label="support"))


class Migration(migrations.Migration):
    dependencies = [("support", "0003_incidents")]
    operations = [migrations.RunPython(grant_view_incident, revoke_view_incident)]
