"""Worker-pool helpers shared by the file-based evaluations (panoptic and semantic)."""
from __future__ import annotations

import os

import cv2


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity / cpuset), the default worker count of the CLIs."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


def init_worker() -> None:
    """One OpenCV thread per worker process: the pool already spreads images over every core."""
    cv2.setNumThreads(1)
