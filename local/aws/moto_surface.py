"""Everything of moto's that the local AWS reaches into, in one place, with the moto version it was written
against.

moto's server and its public API are stable; these are not: backend methods the local AWS wraps
(``ecs_sim``, ``ids``, ``sqs_release``), a model class it subclasses (ECS's ``Task``), response handlers it
adds (``query_definitions``) and private attributes it reads. ``PATCHED`` records the parameters each wrapped
callable has and ``ADDED`` the handlers moto lacks; ``tests/local/test_moto_surface.py`` compares them with
the installed moto, so an upgrade that changes them fails there, by name, instead of somewhere in a job run.
"""

from moto.core.serialize import JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model
from moto.ec2 import ec2_backends
from moto.ec2.models import security_groups, subnets
from moto.ecs import models as ecs_models
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import ecs_backends
from moto.events.models import events_backends
from moto.iam.models import get_account_id_from
from moto.logs import logs_backends
from moto.logs.exceptions import InvalidParameterException as LogsInvalidParameterException
from moto.logs.exceptions import ResourceNotFoundException
from moto.logs.models import LogsBackend
from moto.logs.responses import LogsResponse
from moto.moto_api._internal import mock_random
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.sqs.models import SQSBackend
from moto.utilities.utils import get_partition

MOTO_VERSION = "5.2.5"  # lock/*.txt pin it; the surface below is this version's

# "module:qualified.name" of each callable the local AWS wraps or subclasses -> the parameters it relies on.
PATCHED = {
    "moto.ecs.models:EC2ContainerServiceBackend.run_task": (
        "self",
        "cluster_str",
        "task_definition_str",
        "count",
        "overrides",
        "started_by",
        "tags",
        "launch_type",
        "networking_configuration",
        "group",
        "platform_version",
        "capacity_provider_strategy",
    ),
    "moto.ecs.models:EC2ContainerServiceBackend.start_task": (
        "self",
        "cluster_str",
        "task_definition_str",
        "container_instances",
        "overrides",
        "started_by",
        "tags",
        "group",
    ),
    "moto.ecs.models:EC2ContainerServiceBackend.stop_task": ("self", "cluster_str", "task_str", "reason"),
    "moto.ecs.models:Task.__init__": (
        "self",
        "cluster",
        "task_definition",
        "container_instance_arn",
        "resource_requirements",
        "backend",
        "group",
        "launch_type",
        "overrides",
        "started_by",
        "tags",
        "networking_configuration",
        "platform_version",
        "capacity_provider_name",
    ),
    "moto.sqs.models:SQSBackend.change_message_visibility": (
        "self",
        "queue_name",
        "receipt_handle",
        "visibility_timeout",
    ),
    "moto.ec2.models.subnets:SubnetBackend.create_subnet": (
        "self",
        "vpc_id",
        "cidr_block",
        "ipv6_cidr_block",
        "availability_zone",
        "availability_zone_id",
        "ipv6_native",
        "tags",
    ),
    "moto.ec2.models.security_groups:SecurityGroupBackend.create_security_group": (
        "self",
        "name",
        "description",
        "vpc_id",
        "tags",
        "force",
        "is_default",
    ),
    "moto.ec2.models.subnets:random_subnet_id": (),
    "moto.ec2.models.security_groups:random_security_group_id": (),
}
# Response handlers the local AWS adds because moto has none: moto gaining one means ours may be redundant.
ADDED = {
    "moto.logs.responses:LogsResponse": (
        "put_query_definition",
        "describe_query_definitions",
        "delete_query_definition",
    )
}

__all__ = [
    "ADDED",
    "MOTO_VERSION",
    "PATCHED",
    "DomainDispatcherApplication",
    "InvalidParameterException",
    "JSONSerializer",
    "LogsBackend",
    "LogsInvalidParameterException",
    "LogsResponse",
    "MotoRequestHandler",
    "ResourceNotFoundException",
    "SQSBackend",
    "XFormedAttributePicker",
    "create_backend_app",
    "ec2_backends",
    "ecs_backends",
    "ecs_models",
    "events_backends",
    "get_account_id_from",
    "get_partition",
    "get_service_model",
    "logs_backends",
    "mock_random",
    "security_groups",
    "subnets",
]
