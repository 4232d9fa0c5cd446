"""Which transitions approve a declared certificate: where its approval fields are filled in."""

from __future__ import annotations

from states.schema import CertificateSpec, ItemDefinition, Transition

ISSUE_JOB = "issue_certificate"


def issuing_triggers(d: ItemDefinition) -> list[Transition]:
    """Transitions that start the certificate job, by their own jobs or their destination's."""
    jobs_of_state = {s.id: s.job for s in d.states}
    return [t for t in d.transitions if ISSUE_JOB in t.jobs or jobs_of_state.get(t.dest) == ISSUE_JOB]


def approving_triggers(d: ItemDefinition, spec: CertificateSpec) -> list[str]:
    """The spec's ``approved_by``, else the triggers that start the certificate job."""
    if spec.approved_by:
        return list(spec.approved_by)
    return list(dict.fromkeys(t.trigger for t in issuing_triggers(d)))


def specs_approved_by(d: ItemDefinition, trigger: str) -> list[CertificateSpec]:
    """The certificates whose approval fields the approver fills when firing ``trigger``."""
    return [c for c in d.certificates
            if any(f.source == "approval" for f in c.fields) and trigger in approving_triggers(d, c)]
