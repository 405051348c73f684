"""CloudWatch metrics in Embedded Metric Format (aws-lambda-powertools): each metric is one
JSON line on stdout, which CloudWatch Logs turns into a metric under METRICS_NAMESPACE."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from django.conf import settings


def metric_count(name: str, value: float = 1, **dimensions: str) -> None:
    with single_metric(
        name=name, unit=MetricUnit.Count, value=value, namespace=settings.METRICS_NAMESPACE
    ) as metric:
        metric.add_dimension(name="service", value="skymarshal-api")
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)
