"""Registers what the scheduler and the API server must know to load the ecsjobs DAGs: the EventBridge cron
timetable and the steps' extra links."""

from airflow.plugins_manager import AirflowPlugin

from ecsjobs.links import EcsTaskLink, EcsTaskLogsLink
from ecsjobs.schedules import EventBridgeCronTimetable


class EcsJobsPlugin(AirflowPlugin):
    name = "ecsjobs"
    timetables = [EventBridgeCronTimetable]
    operator_extra_links = [EcsTaskLink(), EcsTaskLogsLink()]
