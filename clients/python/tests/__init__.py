"""The client's tests. AGENTEXEC_AG2_SOURCE (a directory holding AG2's `autogen` package, e.g. a checkout of AG2
0.x) is put first on sys.path before anything imports agentexec, so that the whole suite runs with AG2's own types
and test_ag2 runs the client inside AG2's UserProxyAgent."""

import os
import sys

_AG2_SOURCE = os.environ.get("AGENTEXEC_AG2_SOURCE")
if _AG2_SOURCE:
    sys.path.insert(0, os.path.abspath(_AG2_SOURCE))
