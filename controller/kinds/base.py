"""What a kind module imports: the contract (``controller/contract/``), in one place.

The contract itself (what each method is for, how the engine uses it) is documented in
``controller/contract/kind.py``; this module re-exports it for kind modules and records how the
contract changed, so a kind written against the previous one is ported mechanically.

Porting a kind written against the previous contract (``apply_order``, ``stage``, positional
``Operation``/``Finding``, ``payload: Any``, ``report(..., metrics, ...)``, specs registering
themselves with ``register_kind``, the engine's ``plan``/``ownership``/``crashpoints`` modules):

1. import ``Operation``, ``Finding``, ``KindPlan``, ``Step``, ``crash_point`` and the ownership
   helpers from ``controller.contract`` (or from here) instead of ``controller.engine.*``, which
   kinds may no longer import (a test checks it);
2. set ``spec_model = YourSpec`` and drop the ``register_kind`` call: the whole-set check it
   registered becomes ``YourSpec.check_set`` (a classmethod taking the same ``by_kind``);
3. replace ``apply_order`` with ``refers_to`` (the kinds its manifests may reference) and
   ``references(manifest, desired)`` (the refs of one manifest), or nothing at all for a kind
   that references nothing; ``stage`` is gone: a resource that must exist first is its own
   resource (of its own kind, ``implied`` if no manifest declares it) and is referenced;
4. give each operation a payload ``@dataclass(frozen=True, kw_only=True) class X(Step)``, one per
   step, build ``Operation(kind=..., name=..., action=..., resource=..., payload=X(...))`` with
   keywords (``Finding`` too, or ``plan.note(...)`` / ``plan.refuse_not_owned(...)``), and
   ``match operation.payload`` in ``apply``, which returns the events its dependents must hear
   (``()`` for none);
5. turn ``report(desired, live, metrics, ctx)`` into ``health(desired, live, ctx) ->
   KindStatus``: per-resource health (a message becomes a finding), ``managed`` (was
   ``managed_resources``) and the values of the gauge families declared in ``gauges`` (keep the
   names: the series do not change); findings about health move there from ``diff``;
6. call ``plan.requeue_in(after, why)`` in ``diff`` when the kind knows when it wants the next
   pass (a renewal, a grace period's end, a registration under way).
"""

from controller.contract import (
    PLACEHOLDER,
    Action,
    Changes,
    Context,
    DefaultVersionChanged,
    Event,
    Exported,
    FieldChange,
    Finding,
    GaugeFamily,
    Health,
    Kind,
    KindPlan,
    KindStatus,
    Operation,
    Ref,
    ResourceStatus,
    Severity,
    Step,
    Targeted,
)

__all__ = [
    "PLACEHOLDER",
    "Action",
    "Changes",
    "Context",
    "DefaultVersionChanged",
    "Event",
    "Exported",
    "FieldChange",
    "Finding",
    "GaugeFamily",
    "Health",
    "Kind",
    "KindPlan",
    "KindStatus",
    "Operation",
    "Ref",
    "ResourceStatus",
    "Severity",
    "Step",
    "Targeted",
]
