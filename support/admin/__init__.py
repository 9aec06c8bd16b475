"""The support console's model admins, one per file."""
from support.admin import incident, ticket, user  # noqa: F401  (each module registers its ModelAdmin)
