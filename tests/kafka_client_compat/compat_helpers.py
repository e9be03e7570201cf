"""Helpers shared by the Kafka client compatibility tests (no pytest fixtures here)."""

import os
import shutil
import time

# Codec ids in a record batch's attributes (bits 0-2).
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a truthy value or the deadline passes.

    Returns the truthy value; raises AssertionError with the last value/exception on timeout.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)



def kcat_bin():
    return os.environ.get("KCAT") or shutil.which("kcat") or "kcat"
