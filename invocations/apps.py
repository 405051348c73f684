from django.apps import AppConfig


class InvocationsConfig(AppConfig):
    name = "invocations"
    verbose_name = "SkyMarshal invocations"

    def ready(self) -> None:
        # The executor (background.py) is handed what it runs.
        from invocations.background import RunWork, run_work_register
        from invocations.services import invocation_execute, run_end_by_worker

        run_work_register(RunWork(execute=invocation_execute, end_by_worker=run_end_by_worker))
