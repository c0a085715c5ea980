// The microphone, resampled to 16 kHz mono PCM16 in 20 ms chunks (what /v1/calls/protobuf takes).
// Runs in the AudioWorklet thread: each 128-sample block at the context's rate is resampled by
// linear interpolation; every 320 samples one ArrayBuffer is posted to the page.
const OUT_RATE = 16000;
const CHUNK = 320;

class MicProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.pos = 0; // position of the next output sample, in input samples from this block's start
    this.last = 0; // the previous block's last sample, for interpolating across blocks
    this.out = new Int16Array(CHUNK);
    this.n = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    while (this.pos < channel.length) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i === 0 ? this.last : channel[i - 1];
      const b = channel[i];
      const s = Math.max(-1, Math.min(1, a + (b - a) * frac));
      this.out[this.n++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.n === CHUNK) {
        this.port.postMessage(this.out.buffer, [this.out.buffer]);
        this.out = new Int16Array(CHUNK);
        this.n = 0;
      }
      this.pos += this.step;
    }
    this.pos -= channel.length;
    this.last = channel[channel.length - 1];
    return true;
  }
}

registerProcessor("mic-processor", MicProcessor);
