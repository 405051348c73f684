"""CloudWatch metrics in Embedded Metric Format (aws-lambda-powertools' EMF provider).

Each EMF document is one JSON line on stdout (logger ``skymarshal_api.emf``, flushed line by
line, so it works under gunicorn as on Lambda), which CloudWatch Logs turns into metrics
under METRICS_NAMESPACE. Every document has the dimension ``service`` (METRICS_SERVICE) and
those of METRICS_DIMENSIONS, plus the metric's own.

Within a request, metrics are kept and written together when the request ends (one document
per set of dimensions, values of one metric as an EMF array), with the request_id as a
property so that a metric can be traced back to its log lines. Outside a request (a
management command) each metric is written at once.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
from django.conf import settings

EMF_LOGGER = "skymarshal_api.emf"
_emf = logging.getLogger(EMF_LOGGER)

COUNT = "Count"
MILLISECONDS = "Milliseconds"


@dataclass(frozen=True)
class MetricSample:
    name: str
    unit: str
    value: float
    dimensions: tuple[tuple[str, str], ...]


_pending: ContextVar[list[MetricSample] | None] = ContextVar("skymarshal_metrics", default=None)


def emf_document(
    samples: list[MetricSample], *, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One EMF document for samples that share their dimensions."""
    provider = AmazonCloudWatchEMFProvider(
        namespace=settings.METRICS_NAMESPACE,
        default_dimensions={"service": settings.METRICS_SERVICE, **settings.METRICS_DIMENSIONS},
        metadata_set=dict(properties or {}),
    )
    for name, value in samples[0].dimensions:
        provider.add_dimension(name=name, value=value)
    for sample in samples:
        provider.add_metric(name=sample.name, unit=sample.unit, value=sample.value)
    return dict(provider.serialize_metric_set())


def _write(samples: list[MetricSample], properties: dict[str, Any] | None) -> None:
    if not samples or is_metrics_disabled():
        return
    by_dimensions: dict[tuple[tuple[str, str], ...], list[MetricSample]] = {}
    for sample in samples:
        by_dimensions.setdefault(sample.dimensions, []).append(sample)
    for group in by_dimensions.values():
        document = emf_document(group, properties=properties)
        _emf.info(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


def metric_record(name: str, unit: str, value: float, **dimensions: str) -> None:
    """Record one metric value: kept for the end of the current request, or written now."""
    sample = MetricSample(name, unit, float(value), tuple(sorted(dimensions.items())))
    pending = _pending.get()
    if pending is None:
        _write([sample], None)
    else:
        pending.append(sample)


def metric_count(name: str, value: float = 1, **dimensions: str) -> None:
    metric_record(name, COUNT, value, **dimensions)


def metrics_collect_start() -> None:
    """From now on this request (context) keeps its metrics until ``metrics_collect_flush``."""
    _pending.set([])


def metrics_collect_flush(properties: dict[str, Any] | None = None) -> list[MetricSample]:
    """Write the kept metrics, with ``properties`` in each document; stop keeping them."""
    pending = _pending.get()
    _pending.set(None)
    if not pending:
        return []
    _write(pending, properties)
    return pending
