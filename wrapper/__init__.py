"""cronwrap's crontab wrapper: standard library and filelock only, never pysnmp."""

__version__ = "0.1.0"
