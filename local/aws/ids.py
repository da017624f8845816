"""Let the local AWS create subnets and security groups with chosen ids.

The environment config names its subnets and security groups by id, as on real AWS; moto draws random ids.
A ``_custom_id_`` tag on CreateSubnet / CreateSecurityGroup (moto's own convention for the resources that
support it) makes the seeded resources carry the ids that ``config/environments/local.yaml`` names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from local.aws.moto_surface import security_groups, subnets

CUSTOM_ID_TAG = "_custom_id_"
_pending = threading.local()


def _id_or(random_id: Callable[[], str]) -> Callable[[], str]:
    def pick() -> str:
        custom = getattr(_pending, "id", None)
        _pending.id = None
        return custom or random_id()

    return pick


def _with_custom_id(create: Callable[..., Any], find_tag: Callable[[Any], str | None]) -> Callable[..., Any]:
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        _pending.id = find_tag(kwargs.get("tags"))
        try:
            return create(self, *args, **kwargs)
        finally:
            _pending.id = None

    return wrapper


def _subnet_tag(tags: dict[str, dict[str, str]] | None) -> str | None:
    return ((tags or {}).get("subnet") or {}).get(CUSTOM_ID_TAG)


def _group_tag(tags: dict[str, str] | None) -> str | None:
    return (tags or {}).get(CUSTOM_ID_TAG)


def enable_custom_ids() -> None:
    subnets.random_subnet_id = _id_or(subnets.random_subnet_id)
    security_groups.random_security_group_id = _id_or(security_groups.random_security_group_id)
    subnets.SubnetBackend.create_subnet = _with_custom_id(subnets.SubnetBackend.create_subnet, _subnet_tag)
    security_groups.SecurityGroupBackend.create_security_group = _with_custom_id(
        security_groups.SecurityGroupBackend.create_security_group, _group_tag
    )
