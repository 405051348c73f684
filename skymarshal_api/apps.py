from django.apps import AppConfig


class SkyMarshalApiConfig(AppConfig):
    name = "skymarshal_api"
    verbose_name = "SkyMarshal API"

    def ready(self) -> None:
        # Registers the system checks. (The OpenAPI authentication extensions come with
        # the schema's views: skymarshal_api/docs_urls.py.)
        from skymarshal_api import checks  # noqa: F401
        from skymarshal_api.snapstart import snapstart_hooks_register

        # Lambda runs them only with SnapStart on; elsewhere they are never called.
        snapstart_hooks_register()
