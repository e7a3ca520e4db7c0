# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a hostguard-watch facet does when it has nothing to do: a facet overrides what it needs."""

from __future__ import annotations


class Facet(object):
    NAME = None
    LOOKBACK = 0
    INTERVAL = None
    DEFAULTS = {}

    def __init__(self, context):
        self.context = context
        self.settings = context.settings

    @staticmethod
    def check_host(settings, where):
        """Raise watch_config.ConfigError naming what the host lacks for these settings."""

    def identifiers(self):
        """The journal's SYSLOG_IDENTIFIERs whose lines on_line() wants."""
        return []

    def log_files(self):
        """Log files whose new lines on_line() wants (identifier: the path); the service follows them."""
        return []

    def start(self):
        pass

    def stop(self):
        pass

    def fds(self):
        return []

    def on_readable(self, fd):
        pass

    def on_line(self, line):
        pass

    def tick(self, now):
        pass
