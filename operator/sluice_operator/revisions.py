"""From a spec to its revisions: one per distinct model+runtime, each with a role and a share."""

from __future__ import annotations

from dataclasses import dataclass

from sluice_operator import spec
from sluice_operator.naming import isvc_name, revision_name


@dataclass(frozen=True)
class Revision:
    """A revision the spec asks for: its content-derived name, role and traffic share."""

    name: str
    role: spec.Role
    model: spec.ModelSpec
    traffic_percent: int = 0
    mirror_percent: int = 0

    @property
    def serving(self) -> bool:
        """Stable and canary answer callers; a shadow only receives copies."""
        return self.role in ("stable", "canary")


def revisions_of(isvc: spec.InferenceService) -> tuple[Revision, ...]:
    """Stable first, then canary, then shadow.

    The spec's CEL rules already forbid two roles naming the same model; the check here keeps
    `sluice render` and the operator honest for objects stored before a rule existed.
    """
    name = isvc_name(isvc)
    runtime = isvc.spec.runtime
    canary = isvc.spec.canary
    shadow = isvc.spec.shadow
    canary_percent = canary.traffic_percent if canary is not None else 0
    found = [
        Revision(
            name=revision_name(name, isvc.spec.model, runtime),
            role="stable",
            model=isvc.spec.model,
            traffic_percent=100 - canary_percent,
        )
    ]
    if canary is not None:
        found.append(
            Revision(
                name=revision_name(name, canary.model, runtime),
                role="canary",
                model=canary.model,
                traffic_percent=canary_percent,
            )
        )
    if shadow is not None:
        found.append(
            Revision(
                name=revision_name(name, shadow.model, runtime),
                role="shadow",
                model=shadow.model,
                mirror_percent=shadow.mirror_percent,
            )
        )
    names = [r.name for r in found]
    for index, revision in enumerate(found):
        if revision.name in names[:index]:
            raise spec.SpecError(
                [f"spec.{revision.role}.model: must differ from the other roles' models"]
            )
    return tuple(found)
