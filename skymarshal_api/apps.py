from django.apps import AppConfig


class SkyMarshalApiConfig(AppConfig):
    name = "skymarshal_api"
    verbose_name = "SkyMarshal API"
