"""What the model remembers of an answer the caller interrupted: what the caller heard.

When the caller talks over the bot, Pipecat's assistant aggregator puts the answer into the context
as far as its text went out through the transport. A telephony provider buffers that audio and
plays it at real time (behind a jitter buffer), so the text can run seconds ahead of the caller's
ears: the model would later believe it said sentences nobody heard. Where the provider echoes
marks (media_streams.py: one after each sentence, or each word for a TTS with word timestamps),
the interrupted answer is cut back to the pieces whose marks came back before the interruption,
as OpenAI's realtime API truncates an item to the audio played and LiveKit's agents keep the
played transcript. An answer nothing of which was heard leaves the context.

Nothing is changed when the provider has echoed no mark (nothing is known), for a realtime call
(the provider keeps that conversation) or when the pieces cannot be found in the answer's text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .media_streams import MediaStream, Piece

if TYPE_CHECKING:
    from pipecat.serializers.base_serializer import FrameSerializer

log = logging.getLogger(__name__)


def heard_part(text: str, pieces: Sequence[Piece]) -> str | None:
    """`text` (an answer as the context has it) up to the first piece the caller did not hear;
    None when the heard pieces are not found in it, in order (then nothing is cut)."""
    position = 0
    for piece in pieces:
        words = piece.text.strip()
        at = text.find(words, position)
        if not piece.heard:
            return text if at < 0 else text[:at].rstrip()  # not in the text: it never went out
        if at < 0:
            return None
        position = at + len(words)
    return text


def heard_messages(messages: list[Any], answer: str, pieces: Sequence[Piece]) -> list[Any]:
    """`messages` with their last one, the interrupted `answer`, cut to what was heard (dropped
    when nothing was); unchanged when the last message is not that answer."""
    if not messages or not answer:
        return messages
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant" or last.get("content") != answer:
        return messages
    heard = heard_part(answer, pieces)
    if heard is None or heard == answer:
        return messages
    log.info("interrupted answer: the caller heard %d of its %d characters", len(heard), len(answer))
    return messages[:-1] + ([{**last, "content": heard}] if heard else [])


def keep_what_was_heard(assistant_aggregator: Any, serializer: FrameSerializer) -> None:
    """Cut each interrupted answer of the call's context to what the caller heard (see the module
    doc); nothing for a serializer without marks."""
    if not isinstance(serializer, MediaStream) or not serializer.dialect.has_marks:
        return
    playback = serializer.playback

    @assistant_aggregator.event_handler("on_assistant_turn_stopped")
    async def cut_to_heard(aggregator: Any, message: Any) -> None:
        if not message.interrupted:
            return
        pieces = playback.take_cut()
        if pieces:
            aggregator.context.transform_messages(
                lambda messages: heard_messages(messages, message.content, pieces)
            )
