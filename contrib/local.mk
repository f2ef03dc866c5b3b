# contrib: systemd units, example configs, quickstart
EXTRA_DIST += contrib/quickstart
EXTRA_DIST += contrib/cairnd@.service contrib/cairnd.conf.example contrib/fstab.example
