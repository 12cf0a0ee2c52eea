// Pure state of a panel: the streamed text rebuilt from checkpoints and deltas, and the status words.
// No DOM here, so node --test covers it. The footer and the shown status come as data from the kernel
// (elk_jupyter/display/render.py footer_items, shown_status): they are decided there only.

// The kernel sends `delta` = {offset, text}: the text added since its previous update. A
// checkpoint (the full text so far) comes rarely: early in the stream, and at the end. A view
// that missed deltas (its front-end code loaded late) keeps what it has until a checkpoint.
// The offset rule (shared with elk_jupyter/display/panel.py): `offset` counts UTF-16 code units, the unit
// JavaScript strings are indexed by, so `acc.slice(0, offset)` never cuts a surrogate pair; the kernel
// cuts deltas between code points, so no delta starts or ends with half of one.
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

// Token counts from the normalised usage the kernel sends (chat names; responses names are read too).
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
  };
}

export const STATUS_LABELS = {
  streaming: "streaming",
  completed: "done",
  incomplete: "incomplete",
  interrupted: "interrupted",
  error: "error",
  replayed: "replayed",
};
