"""The Support group may record the calls it makes (support.record_call)."""
from django.db import migrations


def grant_record_call(apps, schema_editor):
    using = schema_editor.connection.alias if schema_editor else "default"
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    group = Group.objects.using(using).filter(name="Support").first()
    if group is None:
        return
    content_type, _ = ContentType.objects.using(using).get_or_create(app_label="support", model="ticket")
    permission, _ = Permission.objects.using(using).get_or_create(
        content_type=content_type, codename="record_call",
        defaults={"name": "Can record a phone call to the person"})
    group.permissions.add(permission)


def revoke_record_call(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name="Support"):
        group.permissions.remove(*Permission.objects.filter(codename="record_call",
                                                            content_type__app_label="support"))


class Migration(migrations.Migration):
    dependencies = [("support", "0006_callbacks")]
    operations = [migrations.RunPython(grant_record_call, revoke_record_call)]
