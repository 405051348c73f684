from django.apps import AppConfig


class SkyMarshalApiConfig(AppConfig):
    name = "skymarshal_api"
    verbose_name = "SkyMarshal API"

    def ready(self) -> None:
        # Registers the OpenAPI authentication extensions.
        from skymarshal_api import schema  # noqa: F401
