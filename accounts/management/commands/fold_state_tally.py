from django.core.management.base import BaseCommand

from accounts.state_tally import state_tally_fold_all, state_tally_rebuild


class Command(BaseCommand):
    help = ("Fold the accounts changed since the last fold into the state tally the dashboard "
            "counts from (runs every minute on its own). --rebuild counts every customer again "
            "from the rows: after a data-only restore with triggers disabled, or any write the "
            "tally's triggers could not see.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--rebuild", action="store_true")

    def handle(self, *args, rebuild: bool = False, **options) -> None:
        taken = state_tally_rebuild() if rebuild else state_tally_fold_all()
        self.stdout.write(f"state tally: {taken} changes taken" + (", every customer counted again" if rebuild else ""))
