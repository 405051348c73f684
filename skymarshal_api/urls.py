from django.conf import settings
from django.urls import URLResolver, include, path
from django.urls.resolvers import RoutePattern

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

handler400 = "skymarshal_api.web.errors.bad_request_view"
handler403 = "skymarshal_api.web.errors.permission_denied_view"
handler404 = "skymarshal_api.web.errors.not_found_view"
handler500 = "skymarshal_api.web.errors.server_error_view"

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
    # The schema and docs pages, by name: imported when first needed (skymarshal_api/docs_urls.py).
    URLResolver(RoutePattern("api/v1/"), "skymarshal_api.docs_urls"),
] + ([path("api-auth/", include("rest_framework.urls"))] if settings.STAFF_LOGIN_ENABLED else [])
