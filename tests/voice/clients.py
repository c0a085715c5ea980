"""WebSocket call clients for the voice tests and benchmark: they speak what real callers speak.

`ProtobufCall` sends Pipecat protobuf `AudioRawFrame`s of 16 kHz PCM (the seed's clients);
`TwilioCall` opens a Twilio media stream (`connected`, `start`, then `media` events of base64
8 kHz mu-law, encoded here with numpy, independently of Pipecat's codec) and reads `media`,
`clear` and `mark` events back. Like the provider's player, a media-stream client plays the audio
it receives at real time and echoes each mark once the audio before it has played (and, on
`clear`, drops the queued audio and echoes the pending marks at once, as Twilio and Telnyx do;
Plivo drops its checkpoints); `echo_marks=False` is a client that never echoes. `stop()` sends the
provider's stop event. Both pace audio in 20 ms chunks at real time (or faster, `speed`), record
every message they receive with its arrival time, and follow the speech with silence so the VAD
reports the end of the turn.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "speech_16k.wav"
CHUNK_SECONDS = 0.02
VOICED_RMS = 300.0  # a 20 ms chunk louder than this is speech (the fixture's pauses are ~0)


def speech_pcm(rate: int = 16_000) -> bytes:
    """The speech fixture as 16-bit mono PCM at `rate`."""
    with wave.open(str(FIXTURE), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if rate != 16_000:
        pcm = soxr.resample(pcm, 16_000, rate)
    return pcm.astype(np.int16).tobytes()


def _rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


def ulaw_encode(pcm: bytes) -> bytes:
    """G.711 mu-law of 16-bit PCM."""
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.int32)
    sign = (x < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> bytes:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + 0x84) << exponent
    pcm = np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84)
    return pcm.astype(np.int16).tobytes()


@dataclass
class Received:
    at: float  # time.monotonic() of arrival
    kind: str  # "audio", "interruption" (protobuf) / "clear" (twilio), "mark", "text", "other"
    audio: bytes = b""  # 16-bit PCM for "audio"
    raw: Any = None
    wall: float = field(default_factory=time.time)  # wall clock of arrival (Pipecat's VAD stamps time.time())


@dataclass
class CallClient:
    """Base: connect, pace audio out, collect what comes back."""

    url: str
    rate: int
    received: list[Received] = field(default_factory=list)
    closed_at: float | None = None
    close_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # of the upgrade (Authorization, signature)
    _ws: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> CallClient:
        self._ws = await connect(self.url, max_size=None, open_timeout=10, additional_headers=self.headers)
        await self.handshake()
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader

    @property
    def ws(self) -> ClientConnection:
        assert self._ws is not None
        return self._ws

    async def handshake(self) -> None:
        """What the provider sends before audio (nothing for protobuf)."""

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):  # an abnormal close ends the read like a close
            async for message in self.ws:
                self.received.append(self.decode(message))
                self._changed.set()
        self.closed_at = time.monotonic()
        self.close_code = self.ws.close_code
        self._changed.set()

    def decode(self, message: str | bytes) -> Received:
        raise NotImplementedError

    async def send_audio(self, pcm: bytes) -> None:
        raise NotImplementedError

    async def speak(self, pcm: bytes, *, silence: float = 0.6, speed: float = 1.0) -> float:
        """Send `pcm` then `silence` seconds of silence in 20 ms chunks, paced at `speed` x real
        time. Returns the monotonic time the last voiced chunk was sent (the end of speech)."""
        step = int(self.rate * CHUNK_SECONDS) * 2
        audio = pcm + bytes(int(self.rate * silence) * 2)
        start = time.monotonic()
        speech_end = start
        for i, offset in enumerate(range(0, len(audio), step)):
            chunk = audio[offset : offset + step]
            try:
                await self.send_audio(chunk)
            except ConnectionClosed:  # the bot hung up while we talk
                break
            if _rms(chunk) > VOICED_RMS:
                speech_end = time.monotonic()
            delay = start + (i + 1) * CHUNK_SECONDS / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return speech_end

    async def wait_for(self, predicate: Any, timeout: float = 15.0) -> None:
        """Wait until `predicate(self)` holds (checked on every message and on close)."""

        async def loop() -> None:
            while not predicate(self):
                self._changed.clear()
                if self.closed_at is not None and not predicate(self):
                    raise AssertionError(f"socket closed (code {self.close_code}) before the condition held")
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def audio(self, since: float = 0.0) -> list[Received]:
        return [r for r in self.received if r.kind == "audio" and r.at >= since]

    def audio_seconds(self, since: float = 0.0, until: float = float("inf")) -> float:
        return sum(len(r.audio) for r in self.audio(since) if r.at <= until) / 2 / self.rate


@dataclass
class ProtobufCall(CallClient):
    rate: int = 16_000

    def decode(self, message: str | bytes) -> Received:
        from pipecat.frames.protobufs import frames_pb2

        now = time.monotonic()
        frame = frames_pb2.Frame.FromString(message)  # type: ignore[attr-defined]
        which = frame.WhichOneof("frame")
        if which == "audio":
            assert frame.audio.sample_rate == self.rate, frame.audio.sample_rate
            return Received(now, "audio", frame.audio.audio, frame)
        if which in ("interruption", "text"):
            return Received(now, which, raw=frame)
        return Received(now, "other", raw=frame)

    async def send_audio(self, pcm: bytes) -> None:
        from pipecat.frames.protobufs import frames_pb2

        frame = frames_pb2.Frame(  # type: ignore[attr-defined]
            audio=frames_pb2.AudioRawFrame(audio=pcm, sample_rate=self.rate, num_channels=1)  # type: ignore[attr-defined]
        )
        await self.ws.send(frame.SerializeToString())


@dataclass
class MediaStreamCall(CallClient):
    """A telephony media stream: JSON text messages, base64 8 kHz audio, a `start` message first.

    Subclasses give the provider's messages; `clear_event` is what the provider's player takes as
    "drop the queued audio" (the interruption)."""

    rate: int = 8000
    stream_id: str = "stream-00000000-0000-0000-0000-000000000001"
    call_id: str = "call-00000000-0000-0000-0000-000000000001"
    chunk: int = 0
    clear_event: str = "clear"
    audio_event: str = "media"
    mark_event: str = "mark"  # the mark the runner sends (echoed with the same name)
    echo_event: str = "mark"
    echo_on_clear: bool = True  # a `clear` echoes the pending marks (as Twilio and Telnyx document)
    echo_marks: bool = True
    latency: float = 0.0  # seconds the player lags behind the audio it received (jitter buffer)
    parameters: dict[str, str] = field(default_factory=dict)  # custom stream parameters
    echoed: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, mark name)
    _played_until: float = 0.0  # when the player will have played the audio received so far
    _echoes: set[asyncio.Task[None]] = field(default_factory=set)

    def opening(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def media(self, payload: str) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, event: dict[str, Any]) -> None:
        """Assert the reply names our stream (where the provider's protocol has it)."""

    def mark_name(self, event: dict[str, Any]) -> str:
        return str(event["mark"]["name"])

    def echo(self, name: str) -> dict[str, Any]:
        """The provider's message saying the audio before mark `name` has played."""
        raise NotImplementedError

    def stop_message(self) -> dict[str, Any]:
        raise NotImplementedError

    async def stop(self) -> float:
        """Send the provider's stop event (the caller hung up); returns when it was sent."""
        await self.ws.send(json.dumps(self.stop_message()))
        return time.monotonic()

    def marks(self) -> list[Received]:
        """The marks after whole utterances (`utterance-N`)."""
        return [r for r in self.received if r.kind == "mark" and "." not in self.mark_name(r.raw)]

    def piece_marks(self) -> list[Received]:
        """The marks after each piece (sentence) of an utterance (`utterance-N.k`)."""
        return [r for r in self.received if r.kind == "mark" and "." in self.mark_name(r.raw)]

    def echoed_utterances(self) -> list[str]:
        """The names of the utterance marks echoed so far, in order."""
        return [name for _, name in self.echoed if "." not in name]

    def encode(self, pcm: bytes) -> bytes:
        return ulaw_encode(pcm)

    def decode_audio(self, data: bytes) -> bytes:
        return ulaw_decode(data)

    async def handshake(self) -> None:
        for message in self.opening():
            await self.ws.send(json.dumps(message))

    def decode(self, message: str | bytes) -> Received:
        now = time.monotonic()
        event = json.loads(message)
        self.check(event)
        if event.get("event") == self.audio_event:
            audio = self.decode_audio(base64.b64decode(event["media"]["payload"]))
            self._played_until = max(self._played_until, now) + len(audio) / 2 / self.rate
            return Received(now, "audio", audio, event)
        if event.get("event") == self.clear_event:
            self._played_until = now  # the queued audio is dropped
            self._echo_pending()
            return Received(now, "clear", raw=event)
        if event.get("event") == self.mark_event:
            self._schedule_echo(self.mark_name(event), max(self._played_until - now, 0.0) + self.latency)
            return Received(now, "mark", raw=event)
        return Received(now, "other", raw=event)

    def _schedule_echo(self, name: str, delay: float) -> None:
        if not self.echo_marks:
            return

        async def echo() -> None:
            await asyncio.sleep(delay)
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(json.dumps(self.echo(name)))
                self.echoed.append((time.monotonic(), name))
                self._changed.set()

        task = asyncio.create_task(echo(), name=name)
        self._echoes.add(task)
        task.add_done_callback(self._echoes.discard)

    def _echo_pending(self) -> None:
        for task in list(self._echoes):
            task.cancel()
            if self.echo_on_clear:
                self._schedule_echo(task.get_name(), 0.0)

    async def close(self) -> None:
        for task in list(self._echoes):
            task.cancel()
        await super().close()

    async def send_audio(self, pcm: bytes) -> None:
        self.chunk += 1
        await self.ws.send(json.dumps(self.media(base64.b64encode(self.encode(pcm)).decode())))


@dataclass
class TwilioCall(MediaStreamCall):
    stream_id: str = "MZ00000000000000000000000000000001"
    call_id: str = "CA00000000000000000000000000000001"

    def opening(self) -> list[dict[str, Any]]:
        start = {
            "streamSid": self.stream_id,
            "callSid": self.call_id,
            "accountSid": "AC00000000000000000000000000000001",
            "tracks": ["inbound"],
            "customParameters": dict(self.parameters),
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        return [
            {"event": "connected", "protocol": "Call", "version": "1.0.0"},
            {"event": "start", "sequenceNumber": "1", "start": start, "streamSid": self.stream_id},
        ]

    def media(self, payload: str) -> dict[str, Any]:
        media = {
            "track": "inbound",
            "chunk": str(self.chunk),
            "timestamp": str(self.chunk * 20),
            "payload": payload,
        }
        return {
            "event": "media",
            "sequenceNumber": str(self.chunk + 1),
            "media": media,
            "streamSid": self.stream_id,
        }

    def check(self, event: dict[str, Any]) -> None:
        assert event.get("streamSid") == self.stream_id, event

    def echo(self, name: str) -> dict[str, Any]:
        self.chunk += 1
        return {
            "event": "mark",
            "sequenceNumber": str(self.chunk + 1),
            "streamSid": self.stream_id,
            "mark": {"name": name},
        }

    def stop_message(self) -> dict[str, Any]:
        self.chunk += 1
        return {
            "event": "stop",
            "sequenceNumber": str(self.chunk + 1),
            "streamSid": self.stream_id,
            "stop": {"accountSid": "AC00000000000000000000000000000001", "callSid": self.call_id},
        }


@dataclass
class TelnyxCall(MediaStreamCall):
    def opening(self) -> list[dict[str, Any]]:
        start = {
            "call_control_id": self.call_id,
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
            "from": "+15550000001",
            "to": "+15550000002",
            "custom_parameters": dict(self.parameters),
        }
        return [
            {"event": "connected", "version": "1.0.0"},
            {"event": "start", "sequence_number": "1", "start": start, "stream_id": self.stream_id},
        ]

    def media(self, payload: str) -> dict[str, Any]:
        media = {
            "track": "inbound",
            "chunk": str(self.chunk),
            "timestamp": str(self.chunk * 20),
            "payload": payload,
        }
        return {
            "event": "media",
            "sequence_number": str(self.chunk + 1),
            "media": media,
            "stream_id": self.stream_id,
        }

    def echo(self, name: str) -> dict[str, Any]:
        self.chunk += 1
        return {
            "event": "mark",
            "sequence_number": str(self.chunk + 1),
            "stream_id": self.stream_id,
            "mark": {"name": name},
        }

    def stop_message(self) -> dict[str, Any]:
        self.chunk += 1
        return {
            "event": "stop",
            "sequence_number": str(self.chunk + 1),
            "stop": {"call_control_id": self.call_id},
            "stream_id": self.stream_id,
        }


@dataclass
class PlivoCall(MediaStreamCall):
    """Plivo has no stop event (it closes the socket); its marks are checkpoints."""

    clear_event: str = "clearAudio"
    audio_event: str = "playAudio"
    mark_event: str = "checkpoint"
    echo_event: str = "playedStream"
    echo_on_clear: bool = False  # a clearAudio drops the pending checkpoints

    def opening(self) -> list[dict[str, Any]]:
        start = {
            "callId": self.call_id,
            "streamId": self.stream_id,
            "accountId": "MA0000000000000001",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
        }
        extra = ";".join(f"{k}={v}" for k, v in self.parameters.items())  # Plivo's extraHeaders
        return [{"event": "start", "sequenceNumber": 1, "start": start, "extra_headers": extra}]

    def media(self, payload: str) -> dict[str, Any]:
        media = {
            "track": "inbound",
            "timestamp": str(self.chunk * 20),
            "chunk": self.chunk,
            "payload": payload,
        }
        return {
            "event": "media",
            "sequenceNumber": self.chunk + 1,
            "streamId": self.stream_id,
            "media": media,
        }

    def check(self, event: dict[str, Any]) -> None:
        assert event.get("streamId") == self.stream_id, event

    def mark_name(self, event: dict[str, Any]) -> str:
        return str(event["name"])

    def echo(self, name: str) -> dict[str, Any]:
        return {"event": "playedStream", "streamId": self.stream_id, "name": name}


@dataclass
class ExotelCall(MediaStreamCall):
    """Exotel streams raw 16-bit PCM (slin) at 8 kHz, base64."""

    def opening(self) -> list[dict[str, Any]]:
        start = {
            "stream_sid": self.stream_id,
            "call_sid": self.call_id,
            "account_sid": "exotel-account-1",
            "from": "+15550000001",
            "to": "+15550000002",
            "media_format": {"encoding": "base64", "sample_rate": "8000", "bit_rate": "128kbps"},
            "custom_parameters": dict(self.parameters),
        }
        return [
            {"event": "connected"},
            {"event": "start", "sequence_number": 1, "stream_sid": self.stream_id, "start": start},
        ]

    def media(self, payload: str) -> dict[str, Any]:
        media = {"chunk": self.chunk, "timestamp": str(self.chunk * 20), "payload": payload}
        return {
            "event": "media",
            "sequence_number": self.chunk + 1,
            "stream_sid": self.stream_id,
            "media": media,
        }

    def check(self, event: dict[str, Any]) -> None:
        assert event.get("stream_sid") == self.stream_id, event

    def echo(self, name: str) -> dict[str, Any]:
        self.chunk += 1
        return {
            "event": "mark",
            "sequence_number": self.chunk + 1,
            "stream_sid": self.stream_id,
            "mark": {"name": name},
        }

    def stop_message(self) -> dict[str, Any]:
        self.chunk += 1
        return {
            "event": "stop",
            "sequence_number": self.chunk + 1,
            "stream_sid": self.stream_id,
            "stop": {"call_sid": self.call_id, "account_sid": "exotel-account-1", "reason": "callended"},
        }

    def encode(self, pcm: bytes) -> bytes:
        return pcm

    def decode_audio(self, data: bytes) -> bytes:
        return data
