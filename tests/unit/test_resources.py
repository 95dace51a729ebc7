from __future__ import annotations

import os

from govkit import resources


def test_available_cpus_is_capped_by_the_cgroup_quota(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cpu_max = tmp_path / "cpu.max"
    monkeypatch.setattr(resources, "_CGROUP_CPU_MAX", cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert resources.available_cpus() == affinity  # no cgroup file: the affinity
    cpu_max.write_text("max 100000\n")
    assert resources.available_cpus() == affinity
    cpu_max.write_text("50000 100000\n")  # half a CPU still gets one thread
    assert resources.available_cpus() == 1
    cpu_max.write_text(f"{(affinity + 8) * 100000} 100000\n")  # a quota above the affinity changes nothing
    assert resources.available_cpus() == affinity
