// Pure state of a panel: the streamed text rebuilt from checkpoints and deltas, and the footer.
// No DOM here, so node --test covers it.

// The kernel sends `delta` = {offset, text}: the text added since its previous update. A
// checkpoint (the full text so far) comes rarely: early in the stream, and at the end. A view
// that missed deltas (its front-end code loaded late) keeps what it has until a checkpoint.
export function reconcile(acc, checkpoint, delta) {
  if (typeof checkpoint === "string" && checkpoint.length > acc.length) acc = checkpoint;
  if (delta && typeof delta.text === "string" && Number.isInteger(delta.offset)) {
    const end = delta.offset + delta.text.length;
    if (delta.offset <= acc.length && end > acc.length) {
      acc = acc.slice(0, delta.offset) + delta.text;
    }
  }
  return acc;
}

// True when a delta arrived that starts beyond what we have: part of the text is missing.
export function hasGap(acc, delta) {
  return Boolean(delta && Number.isInteger(delta.offset) && delta.offset > acc.length);
}

// Token counts from either endpoint's usage names (chat: prompt/completion, responses: input/output).
export function usageNumbers(usage) {
  usage = usage || {};
  const pd = usage.prompt_tokens_details || usage.input_tokens_details || {};
  const cd = usage.completion_tokens_details || usage.output_tokens_details || {};
  const prompt = usage.prompt_tokens ?? usage.input_tokens;
  const completion = usage.completion_tokens ?? usage.output_tokens;
  return {
    prompt: prompt ?? null,
    completion: completion ?? null,
    cached: pd.cached_tokens ?? null,
    reasoning: cd.reasoning_tokens ?? null,
    promptAudio: pd.audio_tokens ?? null,
    completionAudio: cd.audio_tokens ?? null,
  };
}

// " (3 cached, 40 audio)": the non-zero parts of a count, as usage.py's Usage.describe writes them.
function ofWhich(...parts) {
  const named = parts.filter(([value]) => value).map(([value, name]) => `${value} ${name}`);
  return named.length ? ` (${named.join(", ")})` : "";
}

function seconds(value) {
  return typeof value === "number" ? `${value.toFixed(2)} s` : "–";
}

// The footer's items, in order, as [label, value] pairs.
export function footerItems(usage, timing, context) {
  const u = usageNumbers(usage);
  const items = [];
  if (u.prompt !== null) items.push(["prompt", `${u.prompt}` + ofWhich([u.cached, "cached"], [u.promptAudio, "audio"])]);
  if (u.completion !== null) {
    items.push(["completion", `${u.completion}` + ofWhich([u.reasoning, "reasoning"], [u.completionAudio, "audio"])]);
  }
  timing = timing || {};
  items.push(["first token", seconds(timing.ttft)]);
  items.push(["total", seconds(timing.total)]);
  const generating = typeof timing.total === "number" && typeof timing.ttft === "number" ? timing.total - timing.ttft : null;
  if (u.completion && generating && generating > 0) items.push(["speed", `${(u.completion / generating).toFixed(1)} tok/s`]);
  if (context) items.push(["context", context]);
  return items;
}

export const STATUS_LABELS = {
  streaming: "streaming",
  completed: "done",
  incomplete: "incomplete",
  interrupted: "interrupted",
  error: "error",
  replayed: "replayed",
};
