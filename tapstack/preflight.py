"""Checks before the native stack starts, each failing with what to do about it."""

from __future__ import annotations

import re
import shutil
import subprocess

import psutil

from tapstack.native.errors import StackError

MIN_JAVA = 17
MIN_FREE_MEMORY = 3 * 2**30  # the native stack peaks near 3.3 GiB (docs/performance.md)


def java_major() -> int:
    if shutil.which("java") is None:
        raise StackError(
            f"Java is not installed. Install a JDK {MIN_JAVA}+ "
            "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)."
        )
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise StackError(f"Could not read the Java version from: {out.strip()}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 else major


def check() -> None:
    major = java_major()
    if major < MIN_JAVA:
        raise StackError(
            f"Java {major} found; Kafka 4, Spark 4 and Elasticsearch 8 need {MIN_JAVA}+."
        )
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) is not installed: apt-get install maven.")
    available = psutil.virtual_memory().available
    if available < MIN_FREE_MEMORY:
        raise StackError(
            f"The native stack needs about {MIN_FREE_MEMORY / 2**30:.0f} GiB of free memory and "
            f"{available / 2**30:.1f} GiB is available: stop other programs (or another TAP "
            "stack: `tap stack stop --name NAME`) first."
        )
