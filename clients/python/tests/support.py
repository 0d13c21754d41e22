"""What the live tests need: a running node (AGENTEXEC_URL, AGENTEXEC_API_KEY), as modules/gateway's
PythonClientTest provides; without one they skip and say so."""

import os
import time
import unittest

URL = os.environ.get("AGENTEXEC_URL")
KEY = os.environ.get("AGENTEXEC_API_KEY")
OTHER = os.environ.get("AGENTEXEC_OTHER_API_KEY")
EXPIRING_URL = os.environ.get("AGENTEXEC_EXPIRING_URL")
FORBIDDEN = os.environ.get("AGENTEXEC_FORBIDDEN_PATTERN")

live = unittest.skipUnless(URL, "no node: set AGENTEXEC_URL and AGENTEXEC_API_KEY (modules/gateway's PythonClientTest "
                                "starts one and does)")


def eventually(check, seconds=90.0, every=0.5):
    """Polls check() until it is true or the bounded wait ends; returns its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)


def fence(language, code):
    """A Markdown fenced block as a model writes it."""
    return "```%s\n%s\n```" % (language, code)
