#!/bin/sh
# Makes tests/fixtures/speech_16k.wav: a short spoken phrase for the voice tests and benchmark.
# Needs Debian's espeak-ng (apt-get install -y espeak-ng) and the project venv (soxr, numpy come
# with pipecat). espeak-ng writes 22.05 kHz mono; the voice tests want 16 kHz mono signed 16-bit.
set -eu
cd "$(dirname "$0")/.."
PHRASE="${1:-What are your opening hours?}"
OUT=tests/fixtures/speech_16k.wav
TMP=$(mktemp --suffix=.wav)
trap 'rm -f "$TMP"' EXIT
espeak-ng -v en-us -s 165 -w "$TMP" "$PHRASE"
.venv/bin/python - "$TMP" "$OUT" <<'PY'
import sys, wave
import numpy as np
import soxr

src, dst = sys.argv[1], sys.argv[2]
with wave.open(src, "rb") as w:
    assert w.getnchannels() == 1 and w.getsampwidth() == 2, "espeak-ng writes mono s16"
    rate = w.getframerate()
    pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
out = soxr.resample(pcm.astype(np.float32) / 32768, rate, 16000)
out = (np.clip(out, -1, 1) * 32767).astype(np.int16)
with wave.open(dst, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(16000)
    w.writeframes(out.tobytes())
print(f"{dst}: {len(out) / 16000:.2f} s at 16 kHz mono s16")
PY
