"""Worker-pool helpers shared by the file-based evaluations (panoptic and semantic).

The pools fork (the platform default, as panopticapi's): workers start in milliseconds without re-importing.
They do not call ``cv2.setNumThreads``: in a child forked from a process whose OpenCV thread pool is running
(a test runner, a training job), resizing that pool waits forever on the parent's threads.
"""
from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity / cpuset), the default worker count of the CLIs."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
