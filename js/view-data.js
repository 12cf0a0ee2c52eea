// The values a turn's view shows, read defensively. The same fields come from the live widget's traits or from a
// saved VIEW (`application/vnd.elk-jupyter.turn.v1+json`, written by elk_jupyter/display/turn_output.py), and a saved one may be
// hand-edited or hostile: every field is coerced to its type, clipped, or replaced by its empty value. No DOM here.

import { VIEW_VERSION } from "./view-fields.generated.js";

// The field names, the mime type and its version are declared once, in elk_jupyter/display/view_fields.py.
export { STREAMED_FIELDS, VIEW_FIELDS, VIEW_MIME, VIEW_VERSION } from "./view-fields.generated.js";

const MAX_LIST = 64; // tool calls or choices shown
const CLIP = { endpoint: 64, conversation: 200, model_asked: 200, model: 200, status: 32, error: 20_000, note: 2_000,
  context: 2_000 };

export const clip = (value, limit) => (value.length > limit ? `${value.slice(0, limit)}…` : value);
const str = (value, limit = Infinity) => (typeof value === "string" ? clip(value, limit) : "");
const num = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

// Only finite numbers survive, at the top level and in the *_details objects: what state.js's usageNumbers reads.
function readUsage(usage) {
  if (!isObject(usage)) return null;
  const clean = {};
  for (const [key, value] of Object.entries(usage)) {
    if (num(value) !== null) clean[key] = value;
    else if (key.endsWith("_details") && isObject(value)) {
      clean[key] = Object.fromEntries(Object.entries(value).filter(([, v]) => num(v) !== null));
    }
  }
  return clean;
}

// The footer as the kernel computed it: [label, value] pairs of strings (anything else is dropped).
function readFooter(items) {
  if (!Array.isArray(items)) return [];
  return items
    .filter((item) => Array.isArray(item) && item.length === 2 && item.every((part) => typeof part === "string"))
    .slice(0, MAX_LIST)
    .map(([label, value]) => [clip(label, 64), clip(value, 2_000)]);
}

function readToolCall(call) {
  const fn = isObject(call) && isObject(call.function) ? call.function : {};
  const read = { id: str(call?.id, 200), function: { name: str(fn.name, 200), arguments: str(fn.arguments, 200_000) } };
  // A call that ran in the kernel (a tool turn) also carries its result preview, error and duration.
  if (isObject(call) && ("result" in call || "error" in call)) {
    read.result = str(call.result, 2_000);
    read.error = str(call.error, 2_000);
    read.duration = typeof call.duration === "number" && Number.isFinite(call.duration) ? call.duration : null;
  }
  return read;
}

// An image the user attached: a label, and a thumbnail only as an inline data URL of a raster type (it loads
// nothing from anywhere; an SVG could run script, so it is never accepted).
const IMAGE_URL = /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}$/;
function readImage(image) {
  image = isObject(image) ? image : {};
  const src = typeof image.src === "string" && image.src.length <= 30_000 && IMAGE_URL.test(image.src) ? image.src : "";
  return { label: str(image.label, 300), src };
}

function readChoice(choice) {
  choice = isObject(choice) ? choice : {};
  const index = Number.isInteger(choice.index) ? choice.index : "?";
  return { index, text: str(choice.text), finish_reason: str(choice.finish_reason, 64) };
}

// An audio reply's player data: the bytes as base64, or the name of the file beside the notebook (a SHA-256 digest
// and an extension, never a path or a URL: the renderer resolves it against the notebook's own folder). While the
// clip streams the live panel gets only its size.
const AUDIO_MIMES = ["audio/wav", "audio/mpeg", "audio/flac", "audio/ogg", "audio/aac"];
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const AUDIO_FILE = /^[0-9a-f]{64}\.[a-z0-9]{1,5}$/;
const MAX_AUDIO_BASE64 = 96 * 2 ** 20;

function readAudio(audio) {
  if (!isObject(audio)) return null;
  const size = Number.isInteger(audio.size) && audio.size >= 0 ? audio.size : null;
  if (audio.streaming === true) return { streaming: true, size };
  const clip = { streaming: false, size, duration: num(audio.duration), format: str(audio.format, 16),
    mime: AUDIO_MIMES.includes(audio.mime) ? audio.mime : null, data: null, file: null };
  if (typeof audio.data === "string" && audio.data.length <= MAX_AUDIO_BASE64 && BASE64.test(audio.data)) {
    clip.data = audio.data;
  } else if (typeof audio.file === "string" && AUDIO_FILE.test(audio.file)) {
    clip.file = audio.file;
  }
  return clip.mime && (clip.data || clip.file) ? clip : { ...clip, data: null, file: null };
}

const READERS = {
  status: (value) => (typeof value === "string" && /^[a-z_]{1,32}$/.test(value) ? value : "unknown"),
  badge: (value) => (typeof value === "string" && /^[a-z_]{1,32}$/.test(value) ? value : ""),
  footer: readFooter,
  replayed: (value) => value === true,
  attempts: (value) => (Number.isInteger(value) && value >= 0 ? value : 0),
  usage: readUsage,
  timing: (value) => (isObject(value) ? { ttft: num(value.ttft), total: num(value.total) } : {}),
  tool_calls: (value) => (Array.isArray(value) ? value.slice(0, MAX_LIST).map(readToolCall) : []),
  choices: (value) => (Array.isArray(value) ? value.slice(0, MAX_LIST).map(readChoice) : []),
  audio: readAudio,
  images: (value) => (Array.isArray(value) ? value.slice(0, MAX_LIST).map(readImage) : []),
  gap: (value) => value === true,
  text: (value) => str(value),
  reasoning: (value) => str(value),
};

// One field of a view, as the DOM view may use it.
export function readField(name, value) {
  const reader = READERS[name];
  if (reader) return reader(value);
  return str(value, CLIP[name] ?? 2_000);
}

// True for a VIEW this code knows how to draw (anything else is shown as its bundle's plain text).
export function isKnownView(view) {
  return isObject(view) && view.version === VIEW_VERSION;
}

// The output metadata key of a turn's record (elk_jupyter/records/turn.py).
export const RECORD_KEY = "elk_jupyter";
// Fields a saved VIEW leaves out when its output's record holds the same value (display/turn_output.py): the answer
// and the reasoning are kept once in the notebook, in the record, and read from there.
const FROM_RECORD = ["text", "reasoning"];

// A view source over saved data: fixed values, so subscribing does nothing. `metadata`: the output's, whose record
// gives the fields the VIEW leaves out (read through the same coercion as every field: it may be hand-edited too).
export function staticSource(view, metadata) {
  const data = isObject(view) ? view : {};
  const turn = isObject(metadata) && isObject(metadata[RECORD_KEY]) ? metadata[RECORD_KEY].turn : null;
  const reply = isObject(turn) && isObject(turn.reply) ? turn.reply : {};
  return {
    get: (name) => {
      if (Object.hasOwn(data, name)) return data[name];
      return FROM_RECORD.includes(name) && Object.hasOwn(reply, name) ? reply[name] : undefined;
    },
    on() {},
    off() {},
  };
}
