"""The root URLconf: the API's routes (skymarshal_api/api_urls.py), the schema and docs
pages (skymarshal_api/docs_urls.py, by name: imported when a request reaches them, a schema
is made or a URL of the root is reversed, never in a cold start that serves the API), and,
when STAFF_LOGIN_ENABLED, DRF's login pages."""

from django.conf import settings
from django.urls import URLResolver, include, path
from django.urls.resolvers import RoutePattern

from skymarshal_api.api_urls import urlpatterns as api_urlpatterns

handler400 = "skymarshal_api.web.errors.bad_request_view"
handler403 = "skymarshal_api.web.errors.permission_denied_view"
handler404 = "skymarshal_api.web.errors.not_found_view"
handler500 = "skymarshal_api.web.errors.server_error_view"

urlpatterns = [
    *api_urlpatterns,
    URLResolver(RoutePattern("api/v1/"), "skymarshal_api.docs_urls"),
] + ([path("api-auth/", include("rest_framework.urls"))] if settings.STAFF_LOGIN_ENABLED else [])
