from django.apps import AppConfig


class SessionsConfig(AppConfig):
    name = "sessions"
    # django.contrib.sessions already owns the label "sessions".
    label = "agent_sessions"
    verbose_name = "SkyMarshal sessions"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from sessions.dynamodb_parser import dynamodb_parser_install
        from sessions.models import sessions_table_bind, sessions_table_rebind_on_change

        dynamodb_parser_install()
        sessions_table_bind()
        setting_changed.connect(sessions_table_rebind_on_change, dispatch_uid="sessions-table-bind")
