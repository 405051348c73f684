from django.conf import settings
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

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
from skymarshal_api.apis import IdentityApi, SchemaApi

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
    path("api/v1/schema/", SchemaApi.as_view(), name="schema"),
    # The docs pages answer GET only (DRF's OPTIONS metadata cannot render an HTML view).
    path(
        "api/v1/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]),
        name="swagger-ui",
    ),
    path(
        "api/v1/redoc/",
        SpectacularRedocView.as_view(
            url_name="schema",
            http_method_names=["get", "head"],
            # Without drf-spectacular's web fonts, which a CDN serves.
            template_name="skymarshal_api/redoc.html",
        ),
        name="redoc",
    ),
] + ([path("api-auth/", include("rest_framework.urls"))] if settings.STAFF_LOGIN_ENABLED else [])
