"""The operator's side of access control: which Secrets assistants may use, and what the status says
about who may use an assistant.

- Only Secrets labelled `aiassistant.dev/credentials: "true"` can feed an assistant: the operator's
  Secret index and watch select on this label (handlers.py), so an unlabelled Secret is "not found"
  and the SecretResolved message says which label to add. A user who may create AIAssistants but
  not read Secrets cannot make the runner send a database password as a Bearer token: the Secret's
  owner must have opted it in.
- AccessRestricted: True when the runner requires credentials; False with reason Anonymous
  (spec.access.anonymous: anyone who reaches it can use it) or NoCredentials (nothing configured:
  the runner refuses every request but probes and metrics). Anonymous posts a Warning Event (it is open to anyone);
  NoCredentials is safe (nobody is served) and said by the condition only.
"""

from __future__ import annotations

from aiassistant_contract.assistant import AIAssistantSpec

from .status import Cond

CREDENTIALS_LABEL = "aiassistant.dev/credentials"
CREDENTIALS_SELECTOR = {CREDENTIALS_LABEL: "true"}


def access_condition(spec: AIAssistantSpec) -> Cond:
    access = spec.access
    how = [
        name
        for name, configured in (
            ("bearer tokens (access.tokenSecretRef)", access.token_secret_ref is not None),
            ("Twilio signatures (access.twilio)", access.twilio is not None),
        )
        if configured
    ]
    if access.anonymous:
        return (
            "False",
            "Anonymous",
            "spec.access.anonymous is true: anyone who can reach the runner uses the assistant and "
            "spends its provider keys" + (f" (also accepted: {', '.join(how)})" if how else ""),
        )
    if not how:
        return (
            "False",
            "NoCredentials",
            "no spec.access.tokenSecretRef or spec.access.twilio and anonymous is not set: the runner "
            "refuses every request but /healthz, /readyz and /metrics",
        )
    return ("True", "CredentialsRequired", f"callers need {' or '.join(how)}")
