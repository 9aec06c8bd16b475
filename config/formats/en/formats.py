"""How English pages write a date and time, over Django's own English formats.

One format for every timestamp the support console shows, its own pages and
Django's admin pages inside it (lists, history) alike: "5 Mar 2025, 14:03", day
month year and a 24-hour clock, in the support team's time zone (TIME_ZONE; the
console's ``console_time`` and Django's admin both convert before formatting).
The person's pages say times relative and in words instead (STYLE.md)."""
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
