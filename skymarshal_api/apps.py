from django.apps import AppConfig


class SkyMarshalApiConfig(AppConfig):
    name = "skymarshal_api"
    verbose_name = "SkyMarshal API"

    def ready(self) -> None:
        # Registers the OpenAPI authentication extensions and the system checks.
        from skymarshal_api import checks  # noqa: F401
        from skymarshal_api.snapstart import snapstart_hooks_register
        from skymarshal_api.web import schema  # noqa: F401

        # Lambda runs them only with SnapStart on; elsewhere they are never called.
        snapstart_hooks_register()
