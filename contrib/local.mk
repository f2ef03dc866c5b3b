# contrib: systemd units, example configs, quickstart
