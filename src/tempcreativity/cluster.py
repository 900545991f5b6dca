"""What the workflow asks of a SLURM cluster that it cannot read from the config: how many CPUs a vLLM job on
the CPU may ask for when Snakemake was not given --cores."""

from __future__ import annotations

import functools
import subprocess

DEFAULT_ENGINE_CPUS = 8


@functools.cache
def largest_node_cpus() -> int | None:
    """CPUs of the largest node that `sinfo` lists on this machine's SLURM cluster; None without SLURM."""
    try:
        listed = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%c"], capture_output=True, text=True, timeout=30
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    counts = [int(word) for word in listed.stdout.split() if word.isdigit()]
    return max(counts) if listed.returncode == 0 and counts else None


def cluster_engine_cpus() -> int:
    """CPUs of a CPU vLLM job submitted without --cores: DEFAULT_ENGINE_CPUS, but never more than the largest node
    has (a job asking for more would pend forever with reason PartitionConfig). Give --cores to choose."""
    largest = largest_node_cpus()
    return min(DEFAULT_ENGINE_CPUS, largest) if largest else DEFAULT_ENGINE_CPUS
