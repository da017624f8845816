"""Registers the ecsjobs timetable: without it the scheduler and API server cannot load DAGs that use it."""

from airflow.plugins_manager import AirflowPlugin

from ecsjobs.schedules import EventBridgeCronTimetable


class EcsJobsPlugin(AirflowPlugin):
    name = "ecsjobs"
    timetables = [EventBridgeCronTimetable]
