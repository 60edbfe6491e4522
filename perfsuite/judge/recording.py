"""What a rebaseline writes for one variant: its measurement as the tier's portable record
and this machine's record, and how the portable one stands against what is stored."""

from __future__ import annotations

import statistics
from dataclasses import asdict

from perfsuite.judge.verdict import StoredRecords
from perfsuite.measure.measurement import Measurement
from perfsuite.store.records import Latency, MachineRecord, PortableRecord, Quality
from perfsuite.variant import TierSettings, Variant


def records_for(
    variant: Variant, measurement: Measurement, settings: TierSettings, machine_key: str
) -> tuple[PortableRecord, MachineRecord]:
    """A measurement as the tier's portable record and this machine's record."""
    q = measurement.quality
    quality = Quality(q.log_loss, q.accuracy, q.lm_log_loss) if q.log_loss is not None else None
    portable_quality = settings.portable_quality(variant.dtype)
    tolerances = asdict(variant.bounds)
    run_settings, env = measurement.settings, measurement.environment
    lat = measurement.latency
    probes = lat.probe_samples_s
    portable = PortableRecord(
        variant.id,
        settings.name,
        measurement.work.counters(),
        quality if portable_quality else None,
        run_settings,
        {k: v for k, v in env.items() if k != "device"},
        variant.bounds.portable(),
        recorded_on=machine_key,
    )
    machine = MachineRecord(
        variant.id,
        settings.name,
        machine_key,
        Latency.from_samples(list(lat.samples_s), statistics.median(probes) if probes else None),
        asdict(measurement.memory),
        None if portable_quality else quality,
        run_settings,
        env,
        tolerances,
    )
    return portable, machine


def portable_state(stored: StoredRecords, portable: PortableRecord) -> str:
    """new / confirmed / changed (what): the measured portable record against the stored one."""
    if stored.error is not None:
        return "changed (the stored records were unreadable)"
    if stored.portable is None:
        return "new"
    changes = portable.changes_from(stored.portable)
    return f"changed ({'; '.join(changes)})" if changes else "confirmed"
