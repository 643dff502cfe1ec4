"""GPU figures from recorded NVML answers and a recorded host procfs (GP-001..GP-003).

The recordings (``tests/fixtures/gpu/nvml-*.yaml``) hold NVML's answers in its
own shapes: a plain H100, an A100 in MIG mode, an L4 time-sliced between
pods, and two H100s of which one fell off the bus. The expected figures below
are worked out by hand from those files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from headroom.collection.derive import derive_status
from headroom.collection.gpu.nvml import NvmlError, nvml_library
from headroom.collection.gpu.pids import pod_uid_from_proc_cgroup, pod_uid_of_pid
from headroom.collection.gpu.reader import GpuReader, mig_profile
from headroom.collection.gpu.recorded import RecordedNvml
from headroom.collection.gpu.setup import choose_gpu_reader
from headroom.collection.host import HostPaths
from headroom.collection.psutil_reader import PsutilNodeReader
from tests.unit.collection_fixtures import CGROUPFS, FIXTURES, PROCFS
from tests.unit.crdschema import crd_validator

GPU = FIXTURES / "gpu"
HOST_PROC = str(GPU / "procfs")
GIB = 1 << 30
MIB = 1 << 20
BURSTABLE = "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"
GUARANTEED = "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8"
BESTEFFORT = "c4d5e6f7-0819-4a2b-bc3d-4e5f60718293"


def reader(name: str) -> GpuReader:
    return GpuReader(RecordedNvml.from_file(GPU / f"nvml-{name}.yaml"), HOST_PROC)


@pytest.mark.requirement("GP-001", "GP-002")
def test_a_plain_gpu_utilisation_is_the_mean_of_the_samples_since_the_last_cycle() -> None:
    gpus = reader("plain")
    first, second = gpus.read(), gpus.read()

    (gpu,) = first.gpus
    assert (gpu.index, gpu.uuid, gpu.name) == (
        0,
        "GPU-5b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        "NVIDIA H100 80GB HBM3",
    )
    assert (gpu.memoryTotalBytes, gpu.memoryUsedBytes) == (81559 * MIB, 22 * GIB)
    assert gpu.memoryUsedPercent == round(100 * 22 * 1024 / 81559, 1) == 27.6
    # samples 30..80 -> 55; memory 10,20,30,10,20,30 -> 20 (not the 75/18 instant rates)
    assert (gpu.utilizationPercent, gpu.memoryUtilizationPercent) == (55.0, 20.0)
    assert gpu.migMode == "Disabled" and gpu.processCount == 1
    # cycle 2 repeats two old samples (70, 80): only the six new 90s count
    assert (second.gpus[0].utilizationPercent, second.gpus[0].memoryUtilizationPercent) == (
        90.0,
        40.0,
    )
    pod = first.pods[BURSTABLE]
    assert pod.memoryBytes == 20 * GIB
    assert [(d.gpuIndex, d.memoryBytes, d.utilizationPercent) for d in pod.devices] == [
        (0, 20 * GIB, 55.0)  # smUtil 50 and 60
    ]
    assert second.pods[BURSTABLE].memoryBytes == 24 * GIB
    assert second.pods[BURSTABLE].devices[0].utilizationPercent == 90.0  # 80 and 100, not 60
    assert first.warnings == () and first.summary().count == 1


@pytest.mark.requirement("GP-001", "GP-002")
def test_a_mig_gpu_lists_its_devices_and_pods_by_mig_device() -> None:
    snapshot = reader("mig").read()

    (gpu,) = snapshot.gpus
    assert gpu.migMode == "Enabled"
    assert gpu.utilizationPercent is None  # NVML has none in MIG mode
    assert [
        (m.index, m.profile, m.gpuInstanceId, m.memoryTotalBytes, m.memoryUsedBytes)
        for m in gpu.migDevices or ()
    ] == [
        (0, "3g.40gb", 1, 40192 * MIB, 30 * GIB),
        (1, "1g.10gb", 7, 9728 * MIB, 6 * GIB),
        (2, "1g.10gb", 8, 9728 * MIB, 13 * MIB),
    ]
    assert gpu.processCount == 2
    guaranteed = snapshot.pods[GUARANTEED].devices
    assert [(d.uuid, d.migProfile, d.memoryBytes) for d in guaranteed] == [
        ("MIG-11111111-2222-5333-8444-555555555555", "3g.40gb", 30 * GIB - 128 * MIB)
    ]
    besteffort = snapshot.pods[BESTEFFORT].devices
    assert [(d.migProfile, d.memoryBytes, d.utilizationPercent) for d in besteffort] == [
        ("1g.10gb", 6 * GIB - 64 * MIB, None)
    ]


@pytest.mark.requirement("GP-002")
def test_a_time_sliced_gpu_splits_memory_and_sm_share_by_pod() -> None:
    snapshot = reader("timesliced").read()

    (gpu,) = snapshot.gpus
    assert gpu.processCount == 5
    assert gpu.utilizationPercent == 87.5  # (80 + 90 + 85 + 95) / 4
    assert set(snapshot.pods) == {BURSTABLE, GUARANTEED}  # PID 1501 is the host's, 9999 gone
    two = snapshot.pods[BURSTABLE].devices[0]
    assert (two.memoryBytes, two.processes, two.utilizationPercent) == (6 * GIB, 2, 35.0)
    one = snapshot.pods[GUARANTEED].devices[0]
    assert (one.memoryBytes, one.processes, one.utilizationPercent) == (6 * GIB, 1, 50.0)


@pytest.mark.requirement("GP-001")
def test_a_lost_gpu_is_reported_on_that_gpu_and_the_others_are_read() -> None:
    snapshot = reader("errors").read()

    good, lost = snapshot.gpus
    assert lost.error == "nvmlDeviceGetMemoryInfo: NVML_ERROR_GPU_IS_LOST"
    assert lost.xids == [79]
    assert lost.uuid == "GPU-deadbeef-0000-1111-2222-333344445555"
    assert lost.memoryTotalBytes is None and lost.processCount is None
    assert good.error is None and good.memoryUsedBytes == 10 * GIB
    # no samples offered: the instant rates stand in
    assert (good.utilizationPercent, good.memoryUtilizationPercent) == (12.0, 3.0)
    # NVML_VALUE_NOT_AVAILABLE: the pod is seen on the GPU, its memory unknown
    pod = snapshot.pods[BURSTABLE]
    assert pod.memoryBytes is None and pod.devices[0].memoryBytes is None
    assert snapshot.summary().errors == 1
    assert any("GPU 1" in w and "GPU_IS_LOST" in w for w in snapshot.warnings)


def test_nvml_that_cannot_count_gpus_gives_no_gpus_and_a_warning() -> None:
    nvml = RecordedNvml([{"errors": {"device_count": "NVML_ERROR_UNKNOWN"}}])
    snapshot = GpuReader(nvml, HOST_PROC).read()
    assert snapshot.gpus == () and "NVML_ERROR_UNKNOWN" in snapshot.warnings[0]


def test_recorded_errors_carry_nvmls_names() -> None:
    nvml = RecordedNvml.from_file(GPU / "nvml-errors.yaml")
    nvml.device_count()
    with pytest.raises(NvmlError) as raised:
        nvml.memory(nvml.device(1))
    assert raised.value.name == "NVML_ERROR_GPU_IS_LOST" and not raised.value.no_data
    with pytest.raises(NvmlError) as missing:
        nvml.samples(nvml.device(0), "gpu", 0)
    assert missing.value.no_data


@pytest.mark.parametrize(
    ("name", "profile"),
    [
        ("NVIDIA A100-SXM4-80GB MIG 1g.10gb", "1g.10gb"),
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb+me", "1g.10gb+me"),
        ("NVIDIA H100 80GB HBM3", None),
    ],
)
def test_mig_profile_from_the_nvml_name(name: str, profile: str | None) -> None:
    assert mig_profile(name) == profile


@pytest.mark.requirement("GP-002")
@pytest.mark.parametrize(
    ("pid", "uid"),
    [(4101, BURSTABLE), (4102, BURSTABLE), (4201, GUARANTEED), (4301, BESTEFFORT), (1501, None)],
)
def test_a_pid_maps_to_its_pod_through_the_host_procfs(pid: int, uid: str | None) -> None:
    assert pod_uid_of_pid(HOST_PROC, pid) == uid


@pytest.mark.parametrize(
    ("text", "uid"),
    [
        # kind: kubelet cgroupRoot /kubelet
        (
            "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
            f"kubelet-kubepods-besteffort-pod{BESTEFFORT.replace('-', '_')}.slice/cri-containerd-1.scope",
            BESTEFFORT,
        ),
        # static pod: the UID is a config hash
        (
            "0::/kubepods/burstable/pod6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c/abc",
            "6e2f4c1d8a9b3e5f7a0c1d2e3f4a5b6c",
        ),
        ("0::/system.slice/podman-4242.scope", None),  # "pod" in a host unit is no pod
        ("0::/kubepods.slice/kubepods-burstable.slice", None),  # the QoS cgroup itself
        ("", None),
    ],
)
def test_pod_uid_from_proc_cgroup(text: str, uid: str | None) -> None:
    assert pod_uid_from_proc_cgroup(text) == uid


def test_a_missing_pid_is_nobodys() -> None:
    assert pod_uid_of_pid(HOST_PROC, 9999) is None


@pytest.mark.requirement("GP-002")
def test_the_node_reader_puts_gpu_use_on_the_pods_it_reads(tmp_path: Path) -> None:
    paths = HostPaths(
        procfs=str(PROCFS), rootfs=str(tmp_path), cgroupfs=str(CGROUPFS / "v2-systemd")
    )
    node = PsutilNodeReader(paths, gpu=reader("timesliced"))
    sample = node.read()
    status = derive_status(
        None, sample, collected_at=datetime.now(UTC), agent_version="0.1.0", heartbeat_seconds=60
    )
    by_uid = {pod.uid: pod for pod in status.pods}
    assert by_uid[BURSTABLE].gpu is not None and by_uid[BURSTABLE].gpu.memoryBytes == 6 * GIB
    assert by_uid[BESTEFFORT].gpu is None  # not on the GPU: no gpu key on the wire
    assert "gpu" not in by_uid[BESTEFFORT].to_wire()
    assert status.gpuSummary is not None and status.gpuSummary.count == 1
    assert status.gpus is not None and status.gpus[0].name == "NVIDIA L4"


@pytest.mark.requirement("GP-003")
def test_without_the_library_there_is_no_reader_and_no_warning(tmp_path: Path) -> None:
    assert nvml_library([str(tmp_path)], environ={}) is None
    assert choose_gpu_reader(HOST_PROC, library="") == (None, None)


def test_the_library_is_found_on_ld_library_path(tmp_path: Path) -> None:
    (tmp_path / "libnvidia-ml.so.1").write_bytes(b"")
    assert nvml_library([], environ={"LD_LIBRARY_PATH": f"/nowhere:{tmp_path}"}) == str(
        tmp_path / "libnvidia-ml.so.1"
    )


@pytest.mark.requirement("GP-003")
def test_a_library_nvml_cannot_start_gives_no_reader_and_says_why() -> None:
    reader_or_none, why = choose_gpu_reader(HOST_PROC, library="/usr/lib/libnvidia-ml.so.1")
    assert reader_or_none is None
    assert why is not None and "NVML did not start" in why


def _once(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headroom.cli", "agent", "--once", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )


@pytest.mark.requirement("GP-001", "AG-003")
def test_once_with_the_recorded_nvml_prints_gpu_figures() -> None:
    table = _once("--gpu-recording", str(GPU / "nvml-mig.yaml"))
    assert table.returncode == 0, table.stderr
    assert "NVIDIA A100-SXM4-80GB" in table.stdout and "3g.40gb" in table.stdout
    report = json.loads(
        _once("-o", "json", "--gpu-recording", str(GPU / "nvml-errors.yaml")).stdout
    )
    assert not list(crd_validator("resourcereports").iter_errors(report))
    assert report["status"]["gpuSummary"] == {
        "count": 2,
        "memoryMaxUsedPercent": 12.6,
        "utilizationMaxPercent": 12.0,
        "errors": 1,
    }


@pytest.mark.requirement("GP-003", "PR-002")
def test_once_without_gpus_has_no_gpu_section_and_imports_no_nvml() -> None:
    probe = (
        "import sys, contextlib, io, json\n"
        "from headroom.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    code = main(['agent', '--once', '-o', 'json'])\n"
        "status = json.loads(out.getvalue())['status']\n"
        "print(code, 'gpus' in status, 'gpuSummary' in status, 'pynvml' in sys.modules,\n"
        "      'headroom.collection.gpu.reader' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )
    assert result.stdout.split() == ["0", "False", "False", "False", "False"], result.stderr
