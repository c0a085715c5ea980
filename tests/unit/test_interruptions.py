"""interruptions.py's cut of an interrupted answer to what the caller heard, on its own. (A call
over the real WebSocket, with a client that plays and echoes marks: tests/voice/test_telephony.py.)"""

from __future__ import annotations

from aiassistant_runner.interruptions import heard_messages, heard_part
from aiassistant_runner.media_streams import Piece

ANSWER = "Nine. Then five. Nine again."


def pieces(*heard: bool) -> list[Piece]:
    texts = ["Nine.", " Then five.", " Nine again."]
    return [Piece(text, flag) for text, flag in zip(texts, heard, strict=False)]


def test_the_answer_is_cut_before_the_first_piece_not_heard() -> None:
    assert heard_part(ANSWER, pieces(True, False, False)) == "Nine."
    assert heard_part(ANSWER, pieces(True, True, False)) == "Nine. Then five."
    # The same words heard before are not taken for the unheard piece.
    assert heard_part("Nine. Nine.", [Piece("Nine.", True), Piece("Nine.", False)]) == "Nine."
    assert heard_part(ANSWER, pieces(False, False, False)) == ""


def test_pieces_that_never_reached_the_context_cut_nothing() -> None:
    # Pipecat's context has only the first sentence: the unheard second one is not in it.
    assert heard_part("Nine.", pieces(True, False)) == "Nine."
    assert heard_part(ANSWER, pieces(True, True, True)) == ANSWER


def test_pieces_that_do_not_match_the_text_leave_it_alone() -> None:
    assert heard_part(ANSWER, [Piece("Ten.", True), Piece("Nine.", False)]) is None


def test_only_the_interrupted_answer_is_rewritten_or_dropped() -> None:
    before = [{"role": "system", "content": "s"}, {"role": "user", "content": "when?"}]
    answer = {"role": "assistant", "content": ANSWER}
    assert heard_messages([*before, answer], ANSWER, pieces(True, False)) == [
        *before,
        {"role": "assistant", "content": "Nine."},
    ]
    assert heard_messages([*before, answer], ANSWER, pieces(False)) == before
    # The last message is not the answer (or there was none): nothing changes.
    assert heard_messages(before, ANSWER, pieces(True, False)) == before
    assert heard_messages([*before, answer], "", pieces(True, False)) == [*before, answer]
    assert heard_messages([answer, before[1]], ANSWER, pieces(True, False)) == [answer, before[1]]
