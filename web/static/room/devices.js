// Camera, microphone and speaker: opening the chosen devices, listing them, a microphone level
// meter and a speaker test tone. Standard APIs only; where a browser lacks one (choosing the
// speaker is not in every browser), the page simply does without it.

/** Opens camera and microphone (the chosen ones, by device id, when given). */
export async function openDevices(choice = {}) {
  const wanted = (id) => (id ? { deviceId: { exact: id } } : true);
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: wanted(choice.microphone),
      video: wanted(choice.camera),
    });
  } catch (error) {
    // A missing camera should not keep someone from taking part by voice.
    return navigator.mediaDevices.getUserMedia({ audio: wanted(choice.microphone) });
  }
}

/** The devices by kind, with their labels (available once permission was given). */
export async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const of = (kind) => devices.filter((device) => device.kind === kind && device.deviceId);
  return { cameras: of('videoinput'), microphones: of('audioinput'), speakers: of('audiooutput') };
}

/** Fills a <select> with devices, keeping `selected` chosen. */
export function fillSelect(select, devices, selected, fallback) {
  select.replaceChildren(...devices.map((device, index) => {
    const option = document.createElement('option');
    option.value = device.deviceId;
    option.textContent = device.label || `${fallback} ${index + 1}`;
    option.selected = device.deviceId === selected;
    return option;
  }));
}

/** Shows the microphone's level in `meter` (0 to 1) until the returned function is called. */
export function levelMeter(stream, meter) {
  const [track] = stream.getAudioTracks();
  if (!track || !window.AudioContext) return () => {};
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  const draw = () => {
    analyser.getFloatTimeDomainData(samples);
    const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
    meter.value = Math.min(1, rms * 4);
    frame = requestAnimationFrame(draw);
  };
  draw();
  return () => {
    cancelAnimationFrame(frame);
    context.close();
  };
}

/** Plays a short two-note chime on the chosen speaker (`sinkId`, where the browser allows). */
export async function speakerTest(sinkId) {
  const context = new AudioContext();
  const destination = context.createMediaStreamDestination();
  const gain = context.createGain();
  gain.connect(destination);
  const start = context.currentTime;
  for (const [frequency, at] of [[660, 0], [880, 0.35]]) {
    const tone = context.createOscillator();
    tone.frequency.value = frequency;
    tone.connect(gain);
    tone.start(start + at);
    tone.stop(start + at + 0.3);
  }
  gain.gain.setValueAtTime(0.2, start);
  const audio = new Audio();
  audio.srcObject = destination.stream;
  if (sinkId && audio.setSinkId) await audio.setSinkId(sinkId);
  await audio.play();
  setTimeout(() => {
    audio.srcObject = null;
    context.close();
  }, 900);
}
