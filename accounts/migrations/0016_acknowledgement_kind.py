"""The automatic acknowledgement /help/ sends gets a kind of its own, apart from the
replies a support person writes: the console and the subject then say which it is.
Acknowledgements stored before were kind "support"; their idempotency key says what
they are ("support:ack:<message id>", support.services.contact_message_receive), so
they are relabelled too, and one still owed goes out with the true subject."""

from django.db import migrations, models


def relabel_acknowledgements(apps, schema_editor):
    EmailDelivery = apps.get_model("accounts", "EmailDelivery")
    EmailDelivery.objects.filter(kind="support", idempotency_key__startswith="support:ack:").update(
        kind="acknowledgement")


def label_back(apps, schema_editor):
    EmailDelivery = apps.get_model("accounts", "EmailDelivery")
    EmailDelivery.objects.filter(kind="acknowledgement").update(kind="support")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0015_rate_limited_since'),
    ]

    operations = [
        migrations.AlterField(
            model_name='emaildelivery',
            name='kind',
            field=models.CharField(choices=[('verification', 'Verify your address'), ('signup_attempt', 'Someone tried to sign up with your address'), ('all_set', "You're all set"), ('password_reset', 'Password reset'), ('support', 'Message from support'), ('acknowledgement', 'We let them know we got their message (automatic)'), ('abandon_warning', 'Unused account will be removed'), ('email_change', 'Link to move the account to this address'), ('email_change_taken', 'Someone asked to move another account to your address')], max_length=32),
        ),
        migrations.RunPython(relabel_acknowledgements, label_back),
    ]
