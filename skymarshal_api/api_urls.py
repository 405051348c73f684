"""The API's own routes: the root URLconf's (skymarshal_api/urls.py) less the schema and
docs pages. The links in responses are reversed against this one
(invocations/representation.py), so that reversing one never imports the schema's views."""

from django.urls import path

from health.apis import HealthApi
from invocations.apis import (
    InvocationApi,
    InvocationEventsApi,
    InvocationsApi,
    InvocationWaitApi,
    InvokeApi,
)
from invocations.webhook_apis import (
    InvocationDeliveriesApi,
    InvocationRedeliverApi,
    WebhookSecretsApi,
)
from sessions.apis import SessionHistoryApi, SessionListApi
from skymarshal_api.apis import IdentityApi

urlpatterns = [
    path("api/v1/health", HealthApi.as_view(), name="health"),
    path("api/v1/identity", IdentityApi.as_view(), name="identity"),
    path("api/v1/invoke", InvokeApi.as_view(), name="invoke"),
    path("api/v1/invocations", InvocationsApi.as_view(), name="invocations"),
    path("api/v1/invocations/<str:request_id>", InvocationApi.as_view(), name="invocation"),
    path(
        "api/v1/invocations/<str:request_id>/events",
        InvocationEventsApi.as_view(),
        name="invocation-events",
    ),
    path(
        "api/v1/invocations/<str:request_id>/wait",
        InvocationWaitApi.as_view(),
        name="invocation-wait",
    ),
    path(
        "api/v1/invocations/<str:request_id>/deliveries",
        InvocationDeliveriesApi.as_view(),
        name="invocation-deliveries",
    ),
    path(
        "api/v1/invocations/<str:request_id>/deliveries/<str:delivery_id>/redeliver",
        InvocationRedeliverApi.as_view(),
        name="invocation-delivery-redeliver",
    ),
    path("api/v1/webhook-secrets", WebhookSecretsApi.as_view(), name="webhook-secrets"),
    path("api/v1/sessions", SessionListApi.as_view(), name="sessions"),
    path("api/v1/sessions/<str:session_id>", SessionHistoryApi.as_view(), name="session-history"),
]
