"""Settings for every test, the notebooks under nbval included.

Notebooks run in the small `smoke` profile unless the caller chose another, and
record their results and checkpoints in temporary folders instead of the checkout.
This file sits at the repository root so that it applies to `notebooks/` too.
"""

import os
import tempfile

os.environ.setdefault("SSLM_PROFILE", "smoke")
os.environ.setdefault("SSLM_RESULTS_DIR", tempfile.mkdtemp(prefix="sslm-results-"))
# Checkpoints that one notebook saves and a later one loads stay in this session's folder.
os.environ.setdefault("SSLM_RUNS_DIR", tempfile.mkdtemp(prefix="sslm-runs-"))
# No progress bars in test logs; an explicit disable= in code still wins.
os.environ.setdefault("TQDM_DISABLE", "1")
