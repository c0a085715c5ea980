"""What an assistant's author may ask of the operator beyond the spec's own schema (no confused deputy).

Whoever may create an AIAssistant must not get, through the operator, what they could not do
themselves: run an image of their choosing in a pod that holds provider keys, or have the runner send
a key to a host of their choosing. So:
- `spec.image` must match the operator's allowed image list (settings: AIASSISTANT_ALLOWED_IMAGES;
  default: the chart's runner repository only);
- every URL (`baseURL`, `fallbacks[].baseURL`, `stt.baseURL`, `tts.baseURL`, `voice.baseURL`, tool
  `url`) passes the contract's URL policy
  (urls.py: https, or http to in-cluster Services or the operator's allowed HTTP hosts).
Which Secrets an assistant may use is decided by a label (handlers.py watches only labelled ones).
"""

from __future__ import annotations

from aiassistant_contract.assistant import AIAssistantSpec
from aiassistant_contract.errors import SpecError
from aiassistant_contract.urls import check_urls

from .settings import ALLOWED_IMAGES_ENV, Settings


def image_allowed(image: str, patterns: tuple[str, ...]) -> bool:
    """`repo` allows `repo`, `repo:<tag>` and `repo@<digest>`; `prefix*` allows what starts with it."""
    for pattern in patterns:
        if pattern.endswith("*"):
            if image.startswith(pattern[:-1]):
                return True
        elif image == pattern or image.startswith((f"{pattern}:", f"{pattern}@")):
            return True
    return False


def check_policy(spec: AIAssistantSpec, settings: Settings) -> None:
    """Raise SpecError naming each field the operator's policy refuses (image, URLs)."""
    problems = []
    if spec.image is not None and not image_allowed(spec.image, settings.image_patterns()):
        allowed = ", ".join(settings.image_patterns())
        problems.append(
            f"spec.image: {spec.image[:200]!r} is not an allowed runner image (allowed: {allowed}; "
            f"the operator's {ALLOWED_IMAGES_ENV} setting, helm value allowedImages)"
        )
    problems += check_urls(spec, settings.allowed_http_hosts)
    if problems:
        raise SpecError("; ".join(problems))
