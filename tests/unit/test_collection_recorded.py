"""Recorded and synthetic readers: replays for tests and benchmarks without a node."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from headroom.collection.derive import derive_status
from headroom.collection.recorded import (
    RecordedNodeReader,
    RecordingExhausted,
    load_recording,
    sample_from_document,
    sample_to_document,
    save_recording,
)
from headroom.collection.sample import NodeReader, RawSample
from headroom.collection.synthetic import SyntheticNodeReader, synthetic_samples
from tests.unit.collection_fixtures import FIXTURES

RECORDING = FIXTURES / "recordings" / "small-node.yaml"
POD = "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8"


def statuses(reader: NodeReader, count: int) -> list[tuple[float, dict[str, float | None]]]:
    """(CPU %, cores by pod) for ``count`` consecutive reads."""
    previous: RawSample | None = None
    out = []
    for _ in range(count):
        current = reader.read()
        status = derive_status(
            previous,
            current,
            collected_at=datetime.now(UTC),
            agent_version="test",
            heartbeat_seconds=60,
        )
        out.append((status.cpu.utilizationPercent, {p.uid: p.cpuCores for p in status.pods}))
        previous = current
    return out


def test_load_the_documented_format() -> None:
    samples = load_recording(RECORDING)

    assert len(samples) == 3
    assert samples[0].cpu_times.busy == 100.0
    assert samples[0].disks[1].error == "No such file or directory"
    assert samples[1].pods[1].qos_class == "BestEffort"
    assert samples[2].warnings == ("example warning",)
    assert samples[0].agent_container is not None
    assert samples[0].agent_container.cpuLimitCores == 0.1


def test_replay_gives_the_recorded_rates() -> None:
    result = statuses(RecordedNodeReader.from_file(RECORDING, cycle=False), 3)

    assert [percent for percent, _ in result] == [0.0, 50.0, 50.0]
    assert result[1][1] == {POD: 0.5, "c4d5e6f7-0819-4a2b-bc3d-4e5f60718293": None}
    assert result[2][1] == {POD: 0.5}


def test_a_non_cycling_reader_raises_when_exhausted() -> None:
    reader = RecordedNodeReader(load_recording(RECORDING), cycle=False)
    for _ in range(3):
        reader.read()

    with pytest.raises(RecordingExhausted):
        reader.read()


def test_cycling_continues_the_counters_across_laps() -> None:
    result = statuses(RecordedNodeReader.from_file(RECORDING), 9)

    assert [percent for percent, _ in result] == [0.0] + [50.0] * 8
    assert [cores[POD] for _, cores in result[1:]] == [0.5] * 8


def test_cycling_a_single_sample_keeps_the_clock_moving() -> None:
    sample = load_recording(RECORDING)[0]
    reader = RecordedNodeReader([sample])

    clocks = [reader.read().monotonic for _ in range(3)]

    assert clocks == [1000.0, 1001.0, 1002.0]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_save_and_load_round_trip(tmp_path: Path, suffix: str) -> None:
    samples = load_recording(RECORDING) + tuple(synthetic_samples(7, 2, pods=5))
    path = tmp_path / f"recording{suffix}"

    save_recording(path, samples)

    assert load_recording(path) == samples


def test_sample_document_round_trip() -> None:
    sample = synthetic_samples(1, 1)[0]
    assert sample_from_document(sample_to_document(sample)) == sample


def test_unknown_fields_are_refused() -> None:
    document = sample_to_document(load_recording(RECORDING)[0])
    document["cpuTimez"] = document.pop("cpuTimes")

    with pytest.raises(ValidationError):
        sample_from_document(document)


def test_an_empty_recording_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        RecordedNodeReader([])


def test_synthetic_nodes_are_deterministic_per_seed() -> None:
    assert synthetic_samples(3, 4) == synthetic_samples(3, 4)
    assert synthetic_samples(3, 4) != synthetic_samples(4, 4)


def test_synthetic_node_has_thirty_pods_and_sane_figures() -> None:
    reader = SyntheticNodeReader(11, churn=0.05)
    result = statuses(reader, 30)

    assert all(0 < percent <= 100 for percent, _ in result[1:])
    assert all(len(cores) == 30 for _, cores in result)
    assert all(c is None or c >= 0 for _, cores in result for c in cores.values())
    assert any(c is None for _, cores in result[1:] for c in cores.values())  # churned pods


def test_synthetic_counters_only_grow() -> None:
    samples = synthetic_samples(5, 10)

    for before, after in itertools.pairwise(samples):
        assert after.monotonic > before.monotonic
        assert after.cpu_times.busy >= before.cpu_times.busy
        assert after.cpu_times.total > before.cpu_times.total
        counters = {pod.uid: pod.cpu_usage_seconds for pod in before.pods}
        assert all(pod.cpu_usage_seconds >= counters[pod.uid] for pod in after.pods)
