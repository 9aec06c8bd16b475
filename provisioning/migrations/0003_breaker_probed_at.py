from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0002_pace")]

    operations = [
        migrations.RenameField(model_name="breaker", old_name="probe_at", new_name="probed_at"),
    ]
