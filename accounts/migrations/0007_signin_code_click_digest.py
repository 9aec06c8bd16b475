"""Sign-in codes used to be derived from the click's key, stored in clear in
``idempotency_key``: with SECRET_KEY, the database printed live codes. Keep only a
digest of each key (what ``accounts.codes.click_digest`` stores from now on), so no
existing row can rebuild its code either, and make room for a password hash in
``code_hash``. Codes issued before this migration stop working (their HMAC no longer
checks); they lived 15 minutes, and support issues a fresh one."""
import hashlib

from django.db import migrations, models


def digest_click_keys(apps, schema_editor):
    SignInCode = apps.get_model("accounts", "SignInCode")
    for row in SignInCode.objects.exclude(idempotency_key__regex=r"^[0-9a-f]{64}$").only("pk", "idempotency_key"):
        SignInCode.objects.filter(pk=row.pk).update(
            idempotency_key=hashlib.sha256(row.idempotency_key.encode()).hexdigest())


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_user_joined_idx")]
    operations = [
        migrations.AlterField(model_name="signincode", name="code_hash", field=models.CharField(max_length=128)),
        migrations.RunPython(digest_click_keys, migrations.RunPython.noop),
    ]
