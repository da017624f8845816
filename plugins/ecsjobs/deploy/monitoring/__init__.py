"""CloudWatch alarms, a dashboard and saved Logs Insights queries for every job of the catalog, kept in sync.

``plan()`` reads what exists and compares it with what the catalog asks for, field by field; ``apply()`` makes
exactly those changes, so a second sync plans nothing and writes nothing. What the sync creates carries its
mark: alarms the tags ``ecsjobs:managed-by`` and ``ecsjobs:environment`` and, like the saved queries, the name
prefix ``ecsjobs/<env>/``. Only resources with this environment's marks are updated or deleted; an alarm
without the tags is never touched, whatever its name. With ``task_events``, the sync also keeps the events
queue and its EventBridge rule (``ecsjobs.deploy.event_route``).

Alarms are per step, because CloudWatch alarms match exact dimensions and steps publish with ``Job``,
``Step`` and ``Environment``: a duration alarm above 1.5x the step's baseline, an error and a failure alarm.
"""
