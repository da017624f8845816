"""Registers what the scheduler and the API server must know to load the ecsjobs DAGs (the EventBridge cron
timetable and the steps' extra links), and the Jobs page of the Airflow UI (``ecsjobs.ui.jobs_page``)."""

from airflow.plugins_manager import AirflowPlugin

from ecsjobs.catalog.schedules import EventBridgeCronTimetable
from ecsjobs.execution.links import EcsTaskLink, EcsTaskLogsLink


class JobsPage:
    """The Jobs page's FastAPI app, imported on its first request: every Airflow component loads this file (a
    task's process too), only the api-server serves the page, and FastAPI takes 0.2 s to import."""

    async def __call__(self, scope, receive, send) -> None:
        from ecsjobs.ui.jobs_page import app

        await app(scope, receive, send)


class EcsJobsPlugin(AirflowPlugin):
    name = "ecsjobs"
    timetables = [EventBridgeCronTimetable]
    operator_extra_links = [EcsTaskLink(), EcsTaskLogsLink()]
    fastapi_apps = [{"app": JobsPage(), "url_prefix": "/ecsjobs", "name": "ECS jobs"}]
    external_views = [
        {
            "name": "ECS jobs",
            "href": "ecsjobs/",
            "destination": "nav",
            "url_route": "ecs-jobs",
            "category": "browse",
        }
    ]
