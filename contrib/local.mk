# contrib: systemd units, example configs, quickstart
EXTRA_DIST += contrib/quickstart
