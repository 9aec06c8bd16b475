"""Console actions as typed audit rows (who did what to whom), the click key kept
only as a digest there, and the close_account permission, given to the Support
group (closing a spam signup is the support person's call)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def grant_close_account(apps, schema_editor):
    using = schema_editor.connection.alias if schema_editor else "default"
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    group = Group.objects.using(using).filter(name="Support").first()
    if group is None:
        return
    content_type, _ = ContentType.objects.using(using).get_or_create(app_label="support", model="ticket")
    permission, _ = Permission.objects.using(using).get_or_create(
        content_type=content_type, codename="close_account", defaults={"name": "Can close and reopen an account"})
    group.permissions.add(permission)


def revoke_close_account(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name="Support"):
        group.permissions.remove(*Permission.objects.filter(codename="close_account",
                                                            content_type__app_label="support"))


class Migration(migrations.Migration):

    dependencies = [
        ('support', '0004_support_group_incidents'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='ticket',
            options={'permissions': [('rerun_provisioning', 'Can re-run provisioning now'), ('resend_verification', 'Can resend the verification email'), ('correct_email', "Can correct an account's email address"), ('mark_verified', 'Can mark an email verified after confirming identity by phone'), ('issue_signin_code', 'Can issue a one-time sign-in code'), ('reply', 'Can reply to the person'), ('resolve', 'Can resolve a ticket'), ('close_account', 'Can close and reopen an account')]},
        ),
        migrations.RemoveField(
            model_name='ticketevent',
            name='action_key',
        ),
        migrations.AlterField(
            model_name='ticketevent',
            name='kind',
            field=models.CharField(choices=[('opened', 'Opened'), ('diagnostics', 'Automation gave up'), ('message', 'The person wrote'), ('reply', 'We replied'), ('status', 'Status changed'), ('note', 'Note')], max_length=16),
        ),
        migrations.CreateModel(
            name='ConsoleAction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('rerun', 're-ran provisioning'), ('resend', 'resent the verification email'), ('correct_email', 'corrected the email address'), ('mark_verified', 'marked the email verified'), ('signin_code', 'issued a one-time sign-in code'), ('reply', 'replied'), ('resolve', 'resolved the ticket'), ('close', 'closed the account'), ('reopen', 'reopened the account'), ('retry_setup', 'retried setup')], max_length=32)),
                ('click', models.CharField(blank=True, max_length=64, null=True, unique=True)),
                ('detail', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('account', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='console_actions_received', to=settings.AUTH_USER_MODEL)),
                ('actor', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='console_actions', to=settings.AUTH_USER_MODEL)),
                ('ticket', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='console_actions', to='support.ticket')),
            ],
            options={
                'ordering': ['created_at', 'pk'],
                'indexes': [models.Index(fields=['actor', 'created_at'], name='console_action_actor_idx'), models.Index(fields=['account', 'created_at'], name='console_action_account_idx')],
            },
        ),
        migrations.RunPython(grant_close_account, revoke_close_account),
    ]
